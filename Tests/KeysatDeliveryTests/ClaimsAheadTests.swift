import Dispatch
import KeysatCore
import KeysatStore
import XCTest

@testable import KeysatDelivery

/// Claims answered in the background and running ahead of the requests (PostgreSQL's run),
/// where they meet the run's other rules: chains, keys, `--limit`, requests slower than the
/// claims' patience. (Found by an adversarial reading of the change: each failed before it.)
final class ClaimsAheadTests: XCTestCase {
    var store = FakeStore()
    var transport = FakeTransport(clock: FixedClock(FakeStore.t0))

    override func setUp() {
        store = FakeStore()
        transport = FakeTransport(clock: FixedClock(FakeStore.t0))
        store.claimBatch = 32
    }

    private final class Outcome: @unchecked Sendable {
        var summary: RunSummary?
        var error: (any Error)?
    }

    /// A run with claims in the background; `nil` when it has not returned after `seconds`
    /// (it spins).
    private func deliver(_ options: DeliveryOptions, seconds: Int = 20) throws -> RunSummary? {
        let claimer = FakeStore()
        let claims = BackgroundClaims { claimer }
        let run = DeliveryRun.fake(store, transport, options: options, claims: claims)
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) let unsafeRun = run
        DispatchQueue.global().async {
            do { outcome.summary = try unsafeRun.run(at: FakeStore.t0) } catch { outcome.error = error }
            done.signal()
        }
        guard done.wait(timeout: .now() + .seconds(seconds)) == .success else { return nil }
        claims.close()
        if let error = outcome.error { throw error }
        return outcome.summary
    }

    /// An ordered endpoint whose turn comes while every slot is busy is served once one frees,
    /// in order, not dropped for the round.
    func testAnOrderedEndpointIsServedWhenItsTurnComesWhileTheSlotsAreFull() throws {
        for _ in 0..<4 { store.add("u") }
        let ordered = (0..<3).map { _ in store.add("o", ordered: true).id }
        var options = DeliveryOptions()
        options.concurrency = 1
        guard let summary = try deliver(options) else { return XCTFail("the run did not end") }
        XCTAssertEqual(summary.delivered, 7, "left: \(store.rows.map(\.endpointID))")
        XCTAssertEqual(store.recorded.map(\.deliveryID).filter(ordered.contains), ordered)
    }

    /// Keyed rows met while the slots are full wait for a turn of the loop (which polls and
    /// sees signals), rather than being put back and taken again for ever.
    func testKeyedRowsWithTheSlotsFullDoNotSpin() throws {
        for index in 0..<4 {
            store.add("a", key: "k\(index)")
            store.add("b", key: "k\(index)")
        }
        var options = DeliveryOptions()
        options.concurrency = 2
        guard let summary = try deliver(options, seconds: 10) else { return XCTFail("the run spins and never ends") }
        XCTAssertEqual(summary.delivered, 8)
    }

    /// `--limit N` claims no more than it may send: nothing is taken only to be handed back.
    func testALimitedRunClaimsNoMoreThanItMaySend() throws {
        for _ in 0..<40 { store.add("a") }
        var options = DeliveryOptions()
        options.concurrency = 2
        options.perEndpoint = 10
        options.limit = 5
        guard let summary = try deliver(options) else { return XCTFail("the run did not end") }
        XCTAssertEqual(summary.attempted, 5)
        XCTAssertEqual(store.released, [], "claimed past the limit, then handed back")
    }

    /// Rows that waited a whole timeout for a slot are handed back and claimed again in the
    /// round (a fresh lease), not left due for a later run.
    func testRowsThatWaitedTooLongAreTakenAgainNotLeftForTheRound() throws {
        for _ in 0..<6 { store.add("a") }
        transport.latencyMS = 700
        transport.tickMS = 50
        var options = DeliveryOptions()
        options.concurrency = 1
        options.timeoutSeconds = 1
        guard let summary = try deliver(options) else { return XCTFail("the run did not end") }
        XCTAssertEqual(summary.delivered, 6, "released: \(store.released), left: \(store.rows.count)")
    }
}
