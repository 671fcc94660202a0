import Foundation
import KeysatCore
import KeysatStore
import XCTest

@testable import KeysatDelivery

/// The run's rules, with a store in memory and a scripted transport: no curl, no SQLite.
final class DeliveryRunTests: XCTestCase {
    var store = FakeStore()
    var transport = FakeTransport(clock: FixedClock(FakeStore.t0))

    override func setUp() {
        store = FakeStore()
        transport = FakeTransport(clock: FixedClock(FakeStore.t0))
    }

    func deliver(_ options: DeliveryOptions = DeliveryOptions(), stop: @escaping () -> Bool = { false })
        throws -> RunSummary
    {
        try DeliveryRun.fake(store, transport, options: options, stop: stop).run(at: FakeStore.t0)
    }

    func testEverythingDueIsSentOnceAndRecordedAndNothingElse() throws {
        for endpoint in ["a", "b", "c"] { for _ in 0..<5 { store.add(endpoint) } }
        let later = store.add("a", due: 60)
        let summary = try deliver()
        XCTAssertEqual(summary.attempted, 15)
        XCTAssertEqual(summary.delivered, 15)
        XCTAssertEqual(summary.endpoints["b"]?.delivered, 5)
        XCTAssertNil(summary.stoppedBy)
        XCTAssertEqual(transport.started.count, 15)
        XCTAssertEqual(Set(store.recorded.map(\.deliveryID)).count, 15)
        XCTAssertEqual(store.rows.map(\.id), [later.id])
    }

    func testTheRequestIsSignedAndCarriesThePayload() throws {
        let row = store.add("a")
        _ = try deliver()
        let request = try XCTUnwrap(transport.started.first)
        XCTAssertEqual(request.url, "http://a.test/")
        XCTAssertEqual(request.body, row.payload)
        XCTAssertTrue(request.headers.contains("webhook-id: \(row.id)"), "\(request.headers)")
        XCTAssertTrue(request.headers.contains { $0.hasPrefix("webhook-signature: v1,") })
    }

    func testConcurrencyAndPerEndpointCapsAreReachedAndNeverPassed() throws {
        for endpoint in ["a", "b", "c"] { for _ in 0..<10 { store.add(endpoint) } }
        transport.latencyMS = 10
        var options = DeliveryOptions()
        options.concurrency = 5
        options.perEndpoint = 2
        _ = try deliver(options)
        XCTAssertEqual(transport.maxInFlight, 5)
        XCTAssertEqual(transport.maxInFlightByHost.values.max(), 2)
        XCTAssertEqual(transport.started.count, 30)
    }

    func testEndpointsTakeTurns() throws {
        for _ in 0..<4 { store.add("a") }
        for _ in 0..<4 { store.add("b") }
        for _ in 0..<2 { store.add("c") }
        var options = DeliveryOptions()
        options.concurrency = 1
        _ = try deliver(options)
        XCTAssertEqual(transport.hosts, ["a", "b", "c", "a", "b", "c", "a", "b", "a", "b"])
    }

    func testFirstAttemptsGoBeforeRetriesOldestFirst() throws {
        let retryOld = store.add("a", due: -600, attempts: 2)
        let retryNew = store.add("a", due: -60, attempts: 1)
        let first = store.add("a", due: 0)
        let firstOlder = store.add("a", due: -1)
        var options = DeliveryOptions()
        options.concurrency = 1
        _ = try deliver(options)
        XCTAssertEqual(
            transport.started.map { Self.id($0) }, [firstOlder.id, first.id, retryOld.id, retryNew.id])
    }

    func testTheBreakerOpensAfterConsecutiveTransportFailuresAndSkipsTheRest() throws {
        for _ in 0..<10 { store.add("down") }
        for _ in 0..<3 { store.add("up") }
        transport.answer = { FakeTransport.host($0.url) == "down" ? .connectionRefused : .status(204) }
        let logged = LogLines()
        var options = DeliveryOptions()
        options.breaker = 3
        options.perEndpoint = 1  // one at a time from the start, so that the count is exact
        let summary = try DeliveryRun.fake(store, transport, options: options, logged: logged).run(
            at: FakeStore.t0)
        XCTAssertEqual(summary.endpoints["down"]?.attempted, 3)
        XCTAssertEqual(summary.endpoints["down"]?.retryScheduled, 3)
        XCTAssertEqual(summary.endpoints["down"]?.skipped, 7)
        XCTAssertEqual(summary.endpoints["up"]?.delivered, 3)
        XCTAssertEqual(transport.hosts.filter { $0 == "down" }.count, 3)
        XCTAssertEqual(logged.lines.filter { $0.contains("circuit breaker opened") }.count, 1)
        // Skipped rows are untouched: still due, never attempted.
        XCTAssertEqual(store.rows.filter { $0.endpointID == "down" && $0.attemptCount == 0 }.count, 7)
    }

    func testAnEndpointWithATransportFailureGetsOneProbeAtATimeUntilASuccess() throws {
        for _ in 0..<8 { store.add("a") }
        var answered = 0
        transport.answer = { _ in
            answered += 1
            return answered <= 4 ? .connectionRefused : .status(204)
        }
        var options = DeliveryOptions()
        options.breaker = 10
        let summary = try deliver(options)
        // Four at once (the cap), all fail; the fifth alone, and it succeeds; then the cap again.
        XCTAssertEqual(transport.inFlightToHostAtStart, [1, 2, 3, 4, 1, 1, 2, 3])
        XCTAssertEqual(summary.retryScheduled, 4)
        XCTAssertEqual(summary.delivered, 4)
    }

    func testGoneDisablesTheEndpointAndDeadLettersItsOtherDeliveriesWithoutRequests() throws {
        for _ in 0..<4 { store.add("gone") }
        store.add("b")
        transport.answer = { FakeTransport.host($0.url) == "gone" ? .status(410) : .status(204) }
        var options = DeliveryOptions()
        options.perEndpoint = 1
        let summary = try deliver(options)
        XCTAssertEqual(store.disabled.map(\.0), ["gone"])
        XCTAssertEqual(store.disabled.first?.1, "receiver answered 410 Gone")
        XCTAssertEqual(summary.endpointsDisabled, 1)
        XCTAssertEqual(summary.endpoints["gone"]?.deadLettered, 4)
        XCTAssertEqual(transport.hosts.filter { $0 == "gone" }.count, 1)
        XCTAssertEqual(
            store.recorded.filter { !$0.requested }.map(\.error),
            Array(repeating: "endpoint deleted or disabled", count: 3))
        XCTAssertEqual(summary.endpoints["b"]?.delivered, 1)
    }

    func testADisabledOrDeletedEndpointsDeliveriesAreDeadWithoutARequest() throws {
        store.add("off", active: false)
        let summary = try deliver()
        XCTAssertEqual(summary.deadLettered, 1)
        XCTAssertEqual(summary.attempted, 1)
        XCTAssertTrue(transport.started.isEmpty)
    }

    func testAnOrderedEndpointTakesItsDeliveriesOneAtATimeOldestFirst() throws {
        let rows = (0..<4).map { _ in store.add("o", ordered: true) }
        for _ in 0..<4 { store.add("b") }
        let summary = try deliver()
        XCTAssertEqual(summary.endpoints["o"]?.delivered, 4)
        XCTAssertEqual(transport.maxInFlightByHost["o"], 1)
        XCTAssertEqual(
            transport.started.filter { FakeTransport.host($0.url) == "o" }.map { Self.id($0) }, rows.map(\.id)
        )
    }

    func testAFailureInAnOrderedChainHoldsBackTheNewerDeliveries() throws {
        let rows = (0..<4).map { _ in store.add("o", ordered: true) }
        transport.answer = { Self.id($0) == rows[1].id ? .status(500) : .status(204) }
        let summary = try deliver()
        XCTAssertEqual(transport.started.map { Self.id($0) }, [rows[0].id, rows[1].id])
        XCTAssertEqual(summary.endpoints["o"]?.delivered, 1)
        XCTAssertEqual(summary.endpoints["o"]?.retryScheduled, 1)
        XCTAssertEqual(store.rows.map(\.id), [rows[1].id, rows[2].id, rows[3].id])
        XCTAssertEqual(
            store.result(of: rows[1].id), .retry(at: transport.clock.now().adding(seconds: 5)).self)
    }

    func testAnOrderedChainWaitsForItsOldestDeliveryEvenIfANewerOneIsDue() throws {
        store.add("o", due: 60, ordered: true)  // the oldest, not yet due
        store.add("o", ordered: true)
        let summary = try deliver()
        XCTAssertEqual(summary.attempted, 0)
        XCTAssertTrue(transport.started.isEmpty)
    }

    func testMaxRuntimeStopsNewAttemptsAndLeavesTheRestDue() throws {
        for _ in 0..<100 { store.add("a") }
        var options = DeliveryOptions()
        options.concurrency = 1
        options.maxRuntimeSeconds = 0.05  // 50 ms of fake time: 5 ms per attempt
        let summary = try deliver(options)
        XCTAssertEqual(summary.stoppedBy, .maxRuntime)
        XCTAssertEqual(summary.attempted, 10)
        XCTAssertEqual(store.rows.count, 90)
        XCTAssertTrue(store.rows.allSatisfy { $0.attemptCount == 0 })
    }

    func testAStopSignalStartsNothingNewAndRecordsWhatWasInFlight() throws {
        for _ in 0..<20 { store.add("a") }
        var stopped = false
        transport.onPoll = { stopped = true }
        let summary = try deliver(stop: { stopped })
        XCTAssertEqual(summary.stoppedBy, .signal)
        XCTAssertEqual(summary.attempted, 4, "the first turn's starts (the endpoint's cap), then none")
        XCTAssertEqual(store.recorded.count, 4)
        XCTAssertEqual(store.rows.count, 16)
    }

    func testALimitStopsAfterThatManyAttempts() throws {
        for _ in 0..<10 { store.add("a") }
        var options = DeliveryOptions()
        options.limit = 3
        let summary = try deliver(options)
        XCTAssertEqual(summary.stoppedBy, .limit)
        XCTAssertEqual(summary.attempted, 3)
        XCTAssertEqual(store.rows.count, 7)
    }

    func testAnEndpointFailingLongerThanDisableAfterIsDisabled() throws {
        store.add("bad")
        store.add("young")
        store.add("good")
        transport.answer = { FakeTransport.host($0.url) == "good" ? .status(204) : .status(500) }
        store.failingSinceByEndpoint["bad"] = FakeStore.t0.adding(seconds: -6 * 86_400)
        store.failingSinceByEndpoint["young"] = FakeStore.t0.adding(seconds: -3600)
        let summary = try deliver()
        XCTAssertEqual(store.disabled.map(\.0), ["bad"])
        XCTAssertTrue(store.disabled[0].1.hasPrefix("every attempt failed since "), store.disabled[0].1)
        XCTAssertEqual(summary.endpointsDisabled, 1)
    }

    func testAFailingEndpointIsAnnouncedAtHalfAndNinetyPercentOfDisableAfterNotBelow() throws {
        for endpoint in ["forty", "half", "ninety", "both", "good"] { store.add(endpoint) }
        transport.answer = { FakeTransport.host($0.url) == "good" ? .status(204) : .status(500) }
        var options = DeliveryOptions()
        options.disableAfterSeconds = 1000
        // Each began that many seconds before the run's clock (t0, which does not move).
        for (endpoint, seconds) in [("forty", 400), ("half", 500), ("ninety", 900), ("both", 999), ("good", 990)] {
            store.failingSinceByEndpoint[endpoint] = FakeStore.t0.adding(seconds: Int64(-seconds))
        }
        _ = try deliver(options)
        XCTAssertEqual(store.announced.map(\.endpoint), ["both", "half", "ninety"])
        XCTAssertEqual(store.announced.map(\.percent), [90, 50, 90], "the highest level reached only")
        XCTAssertTrue(store.disabled.isEmpty)
        XCTAssertTrue(store.announced[1].data.contains(#""percent":50"#), store.announced[1].data)
        XCTAssertTrue(store.announced[1].data.contains(#""disable_after_seconds":1000"#), store.announced[1].data)
    }

    func testOutcomesAreCommittedInBatches() throws {
        for _ in 0..<10 { store.add("a") }
        var options = DeliveryOptions()
        options.concurrency = 1
        options.flushBatch = 3
        options.commitIntervalMS = 1_000_000
        _ = try deliver(options)
        XCTAssertEqual(store.recorded.count, 10)
        XCTAssertEqual(store.commits, 4, "three batches of 3, then the rest at the end")
    }

    func testOutcomesAreCommittedAtLeastEveryCommitInterval() throws {
        for _ in 0..<10 { store.add("a") }
        var options = DeliveryOptions()
        options.concurrency = 1
        options.commitIntervalMS = 10  // two attempts of 5 ms each
        _ = try deliver(options)
        XCTAssertEqual(store.commits, 5)
    }

    func testARowGoneBeforeItsDeferredPayloadIsReadIsNeitherSentNorCounted() throws {
        var row = store.add("a")
        store.rows[0].payloadDeferred = true
        store.rows[0].payload = []
        row.payload = Array("{\"big\":true}".utf8)
        store.payloads[row.id] = row.payload
        let kept = store.add("a")
        store.rows[1].payloadDeferred = true
        store.rows[1].payload = []
        // The second row's payload is not there: the row was purged after it was read.
        let summary = try deliver()
        XCTAssertEqual(summary.attempted, 1)
        XCTAssertEqual(transport.started.map(\.body), [row.payload])
        XCTAssertEqual(store.rows.map(\.id), [kept.id])
    }

    static func id(_ request: HTTPRequest) -> String {
        request.headers.first { $0.hasPrefix("webhook-id: ") }.map { String($0.dropFirst(12)) } ?? "?"
    }

    // MARK: - Recording

    /// A run that cannot record sends nothing (issue 20: a full disk, every run sending the
    /// same deliveries again), and says so with the cause's class.
    func testARunThatCannotRecordSendsNothing() throws {
        for _ in 0..<10 { store.add("a") }
        store.failure = KeysatError(.io, "database: disk full", cause: .sqlite(13))
        XCTAssertThrowsError(try deliver()) {
            let error = $0 as? KeysatError
            XCTAssertEqual(error?.kind, .io)
            XCTAssertTrue(error?.message.hasSuffix("the run sent nothing") ?? false, "\(String(describing: error))")
        }
        XCTAssertEqual(transport.started.count, 0)
        XCTAssertEqual(store.rows.count, 10)
    }

    /// A commit that fails mid-run stops new requests at once, and the error counts the requests
    /// sent and not recorded.
    func testAFailedCommitStopsNewRequestsAndCountsWhatWasNotRecorded() throws {
        for _ in 0..<100 { store.add("a\(UUID())") }
        var polls = 0
        var startedAtFailure = 0
        transport.onPoll = {
            polls += 1
            if polls == 20 {
                self.store.failure = KeysatError(.io, "database: disk full", cause: .sqlite(13))
                startedAtFailure = self.transport.started.count
            }
        }
        var options = DeliveryOptions()
        options.flushBatch = 4
        XCTAssertThrowsError(try deliver(options)) {
            let message = ($0 as? KeysatError)?.message ?? ""
            XCTAssertTrue(message.contains("were sent and not recorded"), message)
            let sent = self.transport.started.count - self.transport.inFlight
            let recorded = self.store.recorded.count
            XCTAssertTrue(message.contains(": \(sent - recorded) requests were sent"), "\(sent) sent, \(recorded) recorded: \(message)")
            if self.transport.inFlight > 0 {
                XCTAssertTrue(message.contains("\(self.transport.inFlight) request"), message)
            }
        }
        XCTAssertEqual(transport.started.count, startedAtFailure, "no request after the failure")
        XCTAssertLessThan(transport.started.count, 100)
    }
}
