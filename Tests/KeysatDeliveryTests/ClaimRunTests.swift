import KeysatCore
import KeysatStore
import XCTest

@testable import KeysatDelivery

/// The run with a store whose runs claim (PostgreSQL's): what another run holds is left to it,
/// and each outcome carries the claim it was made under.
final class ClaimRunTests: XCTestCase {
    var store = FakeStore()
    var transport = FakeTransport(clock: FixedClock(FakeStore.t0))

    override func setUp() {
        store = FakeStore()
        transport = FakeTransport(clock: FixedClock(FakeStore.t0))
    }

    private func deliver(_ options: DeliveryOptions = DeliveryOptions()) throws -> RunSummary {
        try DeliveryRun.fake(store, transport, options: options).run(at: FakeStore.t0)
    }

    func testADeliveryAnotherRunTookIsNeitherSentNorRecordedNorCounted() throws {
        let mine = store.add("a")
        let theirs = store.add("a")
        store.takenByOthers = [theirs.id]
        let summary = try deliver()
        XCTAssertEqual(transport.started.count, 1)
        XCTAssertEqual(store.recorded.map(\.deliveryID), [mine.id])
        XCTAssertEqual(summary.attempted, 1)
        XCTAssertEqual(store.rows.map(\.id), [theirs.id], "still pending, for the run that holds it")
    }

    func testABusyEndpointIsLeftToTheOtherRunsAfterOneClaimWhileOthersGoOn() throws {
        let busy = Set((0..<5).map { _ in store.add("busy").id })
        for _ in 0..<3 { store.add("free") }
        store.busyEndpoints = ["busy"]
        let summary = try deliver()
        XCTAssertEqual(transport.hosts, ["free", "free", "free"])
        XCTAssertEqual(summary.attempted, 3)
        XCTAssertEqual(
            store.claims.filter { busy.contains($0.id) }.count, 1, "one refused claim, not one per row: \(store.claims)")
    }

    /// A claim that fails (the server went away, a lock held too long) stops the run from
    /// starting more, but the requests already sent are recorded before it reports the failure:
    /// none is sent again for it.
    func testAFailedClaimStopsTheRunAfterRecordingWhatWasSent() throws {
        let sent = store.add("a")
        store.add("b")
        store.add("a")
        store.failingClaims = ("b", KeysatError(.unavailable, "PostgreSQL: connection lost"))
        XCTAssertThrowsError(try deliver()) { XCTAssertEqual(($0 as? KeysatError)?.exitCode, 69) }
        XCTAssertEqual(transport.started.count, 1)
        XCTAssertEqual(store.recorded.map(\.deliveryID), [sent.id])
    }

    /// A store whose claims cost a round trip gets one call for as many of an endpoint's
    /// deliveries as may start now (free slots, the endpoint's cap), not one per delivery.
    func testDeliveriesOfAnEndpointAreClaimedTogetherUpToWhatMayStart() throws {
        for _ in 0..<10 { store.add("a") }
        store.claimBatch = 32
        var options = DeliveryOptions()
        options.perEndpoint = 4
        options.concurrency = 16
        let summary = try deliver(options)
        XCTAssertEqual(summary.delivered, 10)
        XCTAssertEqual(store.claimCalls.first, 4, "\(store.claimCalls)")
        XCTAssertLessThan(store.claimCalls.count, 10, "\(store.claimCalls)")
        XCTAssertEqual(transport.maxInFlight, 4)
    }

    /// Busy while this run has attempts of the endpoint in flight (other runs have the rest of
    /// its slots): the rows wait for one of the run's own to end and go then, none dropped.
    /// (Two runs each holding part of an endpoint both dropped it before, leaving its rows.)
    func testABusyEndpointThisRunAlsoServesWaitsForItsOwnAttemptsAndLosesNoRow() throws {
        for _ in 0..<7 { store.add("a") }
        store.claimBatch = 32
        store.slotsLeftByOthers = 2
        var options = DeliveryOptions()
        options.perEndpoint = 4
        let summary = try deliver(options)
        XCTAssertEqual(summary.delivered, 7)
        XCTAssertEqual(transport.maxInFlight, 2)
        XCTAssertTrue(store.rows.isEmpty)
    }

    func testOutcomesCarryTheirClaimAndTheCapIsAskedForOrderedEndpointsOne() throws {
        store.add("a")
        store.add("o", ordered: true)
        var options = DeliveryOptions()
        options.perEndpoint = 3
        _ = try deliver(options)
        XCTAssertEqual(Set(store.recorded.map { $0.claimToken ?? "" }), Set(store.recorded.map { "token-" + $0.deliveryID }))
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: store.claims.map { ($0.id, $0.perEndpoint) }), ["d1": 3, "d2": 1])
    }

    /// The run tells the store how many of the endpoint's attempts it has in flight itself:
    /// its finished attempts keep their claims until their outcomes are committed, and must
    /// not count against the cap.
    func testEachClaimSaysHowManyOfTheEndpointsAttemptsThisRunHasInFlight() throws {
        for _ in 0..<3 { store.add("a") }
        var options = DeliveryOptions()
        options.perEndpoint = 3
        _ = try deliver(options)  // all three start before the first is polled
        XCTAssertEqual(store.claims.map(\.inFlight), [0, 1, 2])
    }

    // MARK: - Claims in the background

    /// A run whose claims are answered on a thread of their own (`BackgroundClaims`, over a
    /// store of their own as on PostgreSQL) and the claimer's store, once its thread has ended.
    private func deliverClaimingInBackground(_ options: DeliveryOptions, stop: @escaping () -> Bool = { false })
        throws -> (RunSummary, FakeStore)
    {
        let claimer = FakeStore()
        let claims = BackgroundClaims { claimer }
        defer { claims.close() }
        let summary = try DeliveryRun.fake(store, transport, options: options, stop: stop, claims: claims).run(
            at: FakeStore.t0)
        claims.close()
        return (summary, claimer)
    }

    /// Claims run ahead of the requests, each within its endpoint's cap counting what the run
    /// holds of it (in flight and waiting for a slot); every delivery is sent once, within the
    /// concurrency and the cap, and nothing is handed back.
    func testClaimsInTheBackgroundRunAheadWithinEachEndpointsCap() throws {
        for index in 0..<40 { store.add("e\(index % 4)") }
        store.claimBatch = 32
        var options = DeliveryOptions()
        options.concurrency = 4
        options.perEndpoint = 3
        let (summary, claimer) = try deliverClaimingInBackground(options)
        XCTAssertEqual(summary.delivered, 40)
        XCTAssertEqual(Set(store.recorded.map(\.deliveryID)).count, 40)
        XCTAssertEqual(transport.started.count, 40)
        XCTAssertLessThanOrEqual(transport.maxInFlight, 4)
        XCTAssertLessThanOrEqual(transport.maxInFlightByHost.values.max() ?? 0, 3)
        for call in claimer.claimLog {
            XCTAssertLessThanOrEqual(call.size + call.inFlight, call.perEndpoint, "\(claimer.claimLog)")
        }
        XCTAssertTrue(claimer.claimLog.contains { $0.inFlight > 0 }, "claims while the endpoint's requests were in flight")
        XCTAssertTrue(store.released.isEmpty, "\(store.released)")
        XCTAssertEqual(Set(store.recorded.map { $0.claimToken ?? "" }), Set(store.recorded.map { "token-" + $0.deliveryID }))
    }

    /// Once the run stops starting (a signal here), the claims waiting for a slot are handed
    /// back, not left to their leases: every claimed delivery was either sent or handed back.
    func testClaimsWaitingForASlotAreHandedBackWhenTheRunStops() throws {
        for index in 0..<40 { store.add("e\(index % 4)") }
        store.claimBatch = 32
        var polls = 0
        transport.onPoll = { polls += 1 }
        var options = DeliveryOptions()
        options.concurrency = 2
        options.perEndpoint = 4
        let (summary, claimer) = try deliverClaimingInBackground(options, stop: { polls >= 3 })
        XCTAssertEqual(summary.stoppedBy, .signal)
        let sent = store.recorded.map(\.deliveryID)
        XCTAssertFalse(store.released.isEmpty)
        XCTAssertTrue(Set(sent).isDisjoint(with: store.released))
        XCTAssertEqual(Set(sent).union(store.released), Set(claimer.claims.map(\.id)))
        XCTAssertEqual(store.rows.count, 40 - sent.count, "the rest stay due")
    }
}
