import Foundation
import KeysatBackends
import KeysatCore
import KeysatStore
import KeysatTestSupport
import XCTest

/// The store protocol (`WebhookBackend`) as the programs use it, run against the backend that
/// KEYSAT_TEST_BACKEND names (sqlite by default; `make test` runs it again with postgresql):
/// one suite every backend must pass, as River's `riverdrivertest`. Tests of one backend's own
/// SQL stay beside it (DeliveryStoreTests for SQLite, KeysatPostgresTests).
final class StoreProtocolTests: XCTestCase {
    private var directory = ""
    private var database: String?
    private var generator = SystemRandomNumberGenerator()

    override func setUpWithError() throws {
        directory = "/tmp/keysat-store-protocol-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        if let database { TestBackend.dropDatabase(database) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A fresh queue on the backend under test, opened as `init` opens it.
    private func makeStore() throws -> any WebhookBackend {
        let fresh = try TestBackend.freshLocation(in: directory, name: "keysat.db")
        database = fresh.database
        return try Backends.open(fresh.location, create: true)
    }

    private func addEndpoint(_ store: any WebhookBackend, events: [String] = ["a"]) throws -> Endpoint {
        try store.addEndpoint(
            url: "http://h/", secret: "0123456789abcdef", eventTypes: events, description: "", using: &generator)
    }

    private func enqueue(_ store: any WebhookBackend, _ count: Int, type: String = "a") throws -> [String] {
        try (0..<count).flatMap { n in
            try store.enqueue(eventType: type, data: Array(String(n).utf8), idempotencyKey: nil, using: &generator)
                .deliveries.map(\.id)
        }
    }

    /// Due by now, a second ahead so that a delivery enqueued this instant is due.
    private var soon: Timestamp { SystemClock().now().adding(seconds: 1) }

    private func outcome(_ delivery: DueDelivery, previous: Int, _ result: AttemptOutcome.Result) -> AttemptOutcome {
        var outcome = AttemptOutcome(
            deliveryID: delivery.id, previousAttemptCount: previous, result: result, statusCode: 500,
            error: "non-2xx response: HTTP 500, empty body", startedAt: SystemClock().now(),
            finishedAt: SystemClock().now())
        outcome.endpointID = delivery.endpointID
        outcome.rowID = delivery.rowID
        outcome.claimToken = delivery.claimToken
        return outcome
    }

    // MARK: - Endpoints

    func testEndpointsAreAddedUpdatedDisabledAndRemoved() throws {
        let store = try makeStore()
        let first = try addEndpoint(store, events: ["a", "b"])
        let second = try addEndpoint(store)
        XCTAssertEqual(Set(try store.endpoints().map(\.id)), [first.id, second.id])
        XCTAssertEqual(try store.endpoint(id: first.id).eventTypes, ["a", "b"])
        XCTAssertTrue(try store.endpoint(id: first.id).active)
        let updated = try store.updateEndpoint(
            id: first.id, url: "https://example.com/x", eventTypes: ["c"], description: "CRM", ordered: true)
        XCTAssertEqual(updated.url, "https://example.com/x")
        XCTAssertEqual(updated.description, "CRM")
        XCTAssertTrue(updated.ordered)
        XCTAssertEqual(try store.endpoint(id: first.id), updated)
        XCTAssertTrue(try store.setEndpointActive(id: second.id, false))
        XCTAssertFalse(try store.endpoint(id: second.id).active)
        XCTAssertTrue(try store.setEndpointActive(id: second.id, true))
        XCTAssertTrue(try store.endpoint(id: second.id).active)

        _ = try enqueue(store, 2)
        XCTAssertEqual(try store.pendingDeliveryCount(endpointID: second.id), 2)
        XCTAssertThrowsError(try store.removeEndpoint(id: second.id, force: false), "pending deliveries")
        XCTAssertEqual(try store.removeEndpoint(id: second.id, force: true), 2)
        XCTAssertEqual(try store.endpoints().map(\.id), [first.id])
        XCTAssertThrowsError(try store.endpoint(id: second.id)) { error in
            XCTAssertEqual((error as? KeysatError)?.exitCode, 65, "\(error)")
        }
    }

    // MARK: - Enqueue

    func testEnqueueFansOutToSubscribedActiveEndpointsAndKeysReplay() throws {
        let store = try makeStore()
        let a = try addEndpoint(store, events: ["a"])
        let all = try addEndpoint(store, events: ["*"])
        let disabled = try addEndpoint(store, events: ["a"])
        XCTAssertTrue(try store.setEndpointActive(id: disabled.id, false))
        _ = try addEndpoint(store, events: ["b"])

        let first = try store.enqueue(eventType: "a", data: Array("1".utf8), idempotencyKey: "k", using: &generator)
        XCTAssertEqual(Set(first.deliveries.map(\.endpointID)), [a.id, all.id])
        XCTAssertFalse(first.replayed)
        let again = try store.enqueue(eventType: "a", data: Array("1".utf8), idempotencyKey: "k", using: &generator)
        XCTAssertTrue(again.replayed)
        XCTAssertEqual(again.deliveries, first.deliveries, "the first result, nothing written")
        XCTAssertThrowsError(
            try store.enqueue(eventType: "b", data: Array("1".utf8), idempotencyKey: "k", using: &generator)
        ) { error in
            XCTAssertEqual((error as? KeysatError)?.exitCode, 65, "a key used for another event: \(error)")
        }
        XCTAssertEqual(try store.queueCounts().pending, 2)
        let record = try store.delivery(id: first.deliveries[0].id)
        XCTAssertEqual(record.status, .pending)
        XCTAssertEqual(record.attemptCount, 0)
    }

    // MARK: - The run's part

    func testDuePagesFollowTheCursorWithoutGapsOrRepeats() throws {
        let store = try makeStore()
        _ = try addEndpoint(store)
        let ids = try enqueue(store, 7)
        let all = try store.dueDeliveries(dueBy: soon, retries: false, after: nil, limit: 100)
        XCTAssertEqual(all.map(\.id), ids, "in the order they were written")
        var seen: [String] = []
        var cursor: DueCursor?
        while true {
            let page = try store.dueDeliveries(dueBy: soon, retries: false, after: cursor, limit: 3)
            seen += page.map(\.id)
            guard let last = page.last else { break }
            cursor = DueCursor(nextAttemptAt: last.nextAttemptAt, rowID: last.rowID)
        }
        XCTAssertEqual(seen, ids)
        XCTAssertTrue(try store.dueDeliveries(dueBy: soon, retries: true, after: nil, limit: 10).isEmpty)
    }

    /// Keysat's rule for a disabled endpoint ("endpoint deleted or disabled", no request) is
    /// written only while the endpoint is still not active: a run that read the rows while it
    /// was disabled does not dead-letter them after a recovery (or an operator's enable)
    /// enabled it again and re-queued the outage's dead letters.
    func testADisabledEndpointsRuleIsNotWrittenOnceTheEndpointIsActiveAgain() throws {
        let store = try makeStore()
        let endpoint = try addEndpoint(store)
        _ = try enqueue(store, 2)
        XCTAssertTrue(try store.setEndpointActive(id: endpoint.id, false))
        let due = try store.dueDeliveries(dueBy: soon, retries: false, after: nil, limit: 10)
        XCTAssertEqual(due.count, 2)
        XCTAssertFalse(due[0].endpointActive)
        func unsendable(_ delivery: DueDelivery) -> AttemptOutcome {
            var outcome = AttemptOutcome(
                deliveryID: delivery.id, previousAttemptCount: 0, result: .dead, statusCode: nil,
                error: EndpointRecovery.disabledError, startedAt: SystemClock().now(),
                finishedAt: SystemClock().now(), requested: false)
            outcome.endpointID = delivery.endpointID
            outcome.rowID = delivery.rowID
            return outcome
        }
        try store.record([unsendable(due[0])])
        try store.drain()
        XCTAssertEqual(try store.delivery(id: due[0].id).status, .dead, "still disabled: Keysat's rule")
        XCTAssertTrue(try store.setEndpointActive(id: endpoint.id, true))
        try store.record([unsendable(due[1])])
        try store.drain()
        XCTAssertEqual(try store.delivery(id: due[1].id).status, .pending, "enabled meanwhile: left due")
        XCTAssertEqual(try store.delivery(id: due[1].id).attemptCount, 0)
    }

    func testAnOutcomeForAStaleAttemptCountChangesNothing() throws {
        let store = try makeStore()
        _ = try addEndpoint(store)
        _ = try enqueue(store, 2)
        let due = try store.dueDeliveries(dueBy: soon, retries: false, after: nil, limit: 10)
        guard case .claimed(let claimed) = try store.claim(due[0], perEndpoint: 4, inFlight: 0, leaseSeconds: 60) else {
            return XCTFail("a due delivery nobody holds is claimed")
        }
        let retryAt = SystemClock().now().adding(seconds: 3600)
        try store.record([outcome(claimed, previous: 0, .retry(at: retryAt))])
        // A second outcome for the same attempt (a run killed after the commit, say) is ignored.
        try store.record([outcome(claimed, previous: 0, .dead)])
        try store.drain()
        let row = try store.delivery(id: due[0].id)
        XCTAssertEqual(row.attemptCount, 1)
        XCTAssertEqual(row.status, .pending)
        // PostgreSQL's time is the database's clock plus the delay the policy chose.
        let next = try XCTUnwrap(row.nextAttemptAt.flatMap { Timestamp(rfc3339: $0) })
        XCTAssertLessThan(abs(next.microseconds - retryAt.microseconds), 1_000_000)
        XCTAssertEqual(try store.attempts(deliveryID: due[0].id).count, 1)
        // An outcome naming one row's position and another row's id changes neither.
        guard case .claimed(let other) = try store.claim(due[1], perEndpoint: 4, inFlight: 0, leaseSeconds: 60) else {
            return XCTFail("a due delivery nobody holds is claimed")
        }
        var mismatched = outcome(other, previous: 0, .dead)
        mismatched.rowID = due[0].rowID
        try store.record([mismatched])
        try store.drain()
        XCTAssertEqual(try store.delivery(id: due[1].id).status, .pending)
        XCTAssertEqual(try store.delivery(id: due[0].id).attemptCount, 1)
    }

    func testOutcomesAreCountedAndDeadOnesRetriedAndPurged() throws {
        let store = try makeStore()
        _ = try addEndpoint(store)
        let ids = try enqueue(store, 3)
        let due = try store.dueDeliveries(dueBy: soon, retries: false, after: nil, limit: 10)
        var outcomes: [AttemptOutcome] = []
        for (delivery, result) in zip(due, [AttemptOutcome.Result.delivered, .dead, .dead]) {
            guard case .claimed(let claimed) = try store.claim(delivery, perEndpoint: 4, inFlight: 0, leaseSeconds: 60) else {
                return XCTFail("\(delivery.id) not claimed")
            }
            outcomes.append(outcome(claimed, previous: 0, result))
        }
        try store.record(outcomes)
        try store.drain()
        var counts = try store.queueCounts()
        XCTAssertEqual([counts.pending, counts.delivered, counts.dead], [0, 1, 2])
        var dead = DeliveryFilter()
        dead.state = .dead
        XCTAssertEqual(Set(try store.deliveries(dead, limit: 10).map(\.id)), Set(ids[1...]))

        XCTAssertEqual(try store.retry(ids: [ids[1]], force: false), 1)
        XCTAssertEqual(try store.delivery(id: ids[1]).status, .pending)
        counts = try store.queueCounts()
        XCTAssertEqual([counts.pending, counts.delivered, counts.dead], [1, 1, 1])

        let future = SystemClock().now().adding(seconds: 86_400)
        let wouldPurge = try store.purge(scope: .allFinished, before: future, dryRun: true)
        XCTAssertEqual(wouldPurge.deliveries, 2)
        XCTAssertEqual(try store.purge(scope: .allFinished, before: future, dryRun: false).deliveries, 2)
        XCTAssertEqual(try store.queueCounts().pending, 1, "purge never deletes a pending delivery")
        XCTAssertEqual(try store.attempts(deliveryID: ids[0]).count, 0, "the history goes with its delivery")
    }
}
