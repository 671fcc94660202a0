import Glibc
import KeysatCore
import KeysatStore
import XCTest

/// The maintenance commands answer from indexes and kept counts, never by scanning the
/// deliveries or the attempt history: the plans of the very statements they run (recorded by
/// `Database.prepared`) are read with EXPLAIN QUERY PLAN, and a table scan fails the test.
final class StatsQueryPlanTests: XCTestCase {
    private let path = "/tmp/keysat-plan-test-\(UInt64.random(in: 0...UInt64.max)).db"
    private var generator = SystemRandomNumberGenerator()

    override func tearDown() {
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
    }

    /// Tables whose whole scan is linear in the history.
    static let large = ["webhook_deliveries", "webhook_delivery_attempts"]

    /// The plan lines of `sql`, with `sql` itself, for the failure message.
    private func plan(_ sql: String, in store: WebhookStore) throws -> [String] {
        try store.database.prepare("EXPLAIN QUERY PLAN " + sql).rows { $0.string(3) }
    }

    /// Fails for every statement in `statements` whose plan scans a large table (a `SCAN` of it
    /// that no index serves) or, with `ordered`, sorts in a temporary tree.
    private func assertNoScan(
        _ statements: [String], in store: WebhookStore, ordered: Bool = false, _ what: String,
        line: UInt = #line
    ) throws {
        XCTAssertFalse(statements.isEmpty, "\(what) ran no statement", line: line)
        for sql in statements where !sql.hasPrefix("EXPLAIN") {
            for step in try plan(sql, in: store) {
                let scan = step.hasPrefix("SCAN ") && !step.contains(" USING ")
                let table = step.split(separator: " ").dropFirst().first.map(String.init) ?? ""
                let large =
                    Self.large.contains(table) || table == "d" || table == "a" || table == "a2"
                    || table == "d2"
                XCTAssertFalse(scan && large, "\(what): \(step)\n\(sql)", line: line)
                if ordered {
                    XCTAssertFalse(
                        step.contains("TEMP B-TREE FOR ORDER BY"), "\(what): \(step)\n\(sql)", line: line)
                }
            }
        }
    }

    /// Runs `body` and returns the statements it prepared.
    private func statements(_ store: WebhookStore, _ body: () throws -> Void) rethrows -> [String] {
        store.database.prepared = []
        try body()
        defer { store.database.prepared = nil }
        return store.database.prepared ?? []
    }

    /// A store with one endpoint and `events` events queued for it.
    private func store(events: Int, clock: any TimeSource = SystemClock()) throws -> (WebhookStore, Endpoint)
    {
        let store = try WebhookStore(path: path, create: true, clock: clock)
        let endpoint = try store.addEndpoint(
            url: "http://h/", secret: "0123456789abcdef", eventTypes: ["a"], description: "",
            using: &generator)
        for n in 0..<events {
            _ = try store.enqueue(
                eventType: "a", data: Array(String(n).utf8), idempotencyKey: nil, using: &generator)
        }
        return (store, endpoint)
    }

    /// What every run asks, idle or not, seeks: not even a whole index is read (the sweep of rows
    /// whose time is not a time, written with an OR, read all of Keysat's pending index, and with
    /// ORDER BY rowid the table: an idle run took 9 ms instead of 2.6).
    func testTheRunsQueriesSeek() throws {
        let (store, _) = try store(events: 50)
        let run = try statements(store) {
            _ = try store.unschedulable(limit: 1000)
            _ = try store.dueDeliveries(dueBy: SystemClock().now(), retries: false, after: nil, limit: 256)
            _ = try store.dueDeliveries(
                dueBy: SystemClock().now(), retries: true,
                after: DueCursor(nextAttemptAt: "2026-01-01T00:00:00.000000+00:00", rowID: 1), limit: 256)
        }
        XCTAssertEqual(run.count, 4)
        for sql in run {
            for step in try plan(sql, in: store) where step.contains(" d ") || step.hasSuffix(" d") {
                XCTAssertTrue(step.hasPrefix("SEARCH d USING INDEX idx_webhook_deliveries_pending"), "\(step)\n\(sql)")
            }
        }
    }

    func testStatsListsPurgeAndMetricsNeverScan() throws {
        let (store, endpoint) = try store(events: 50)
        for (what, ran) in [
            ("queue counts", try statements(store) { _ = try store.queueCounts() }),
            ("endpoint stats", try statements(store) { _ = try store.endpointStats() }),
        ] {
            try assertNoScan(ran, in: store, what)
            // Counting may read only the partial indexes of due and of stopped rows (the backlog),
            // never an index over every delivery of an endpoint.
            for sql in ran {
                for step in try plan(sql, in: store) where step.contains("webhook_deliveries") {
                    XCTAssertTrue(
                        step.contains("idx_keysat_webhooks_deliveries_stopped")
                            || step.contains("idx_webhook_deliveries_pending (next_attempt_at"),
                        "\(what): \(step)\n\(sql)")
                }
            }
        }
        var filters: [(String, DeliveryFilter)] = [("no filter", DeliveryFilter())]
        for state in DeliveryRecord.State.allCases {
            var filter = DeliveryFilter()
            filter.state = state
            filters.append(("--status \(state)", filter))
        }
        var byEndpoint = DeliveryFilter()
        byEndpoint.endpointID = endpoint.id
        var byType = DeliveryFilter()
        byType.eventType = "a"
        var byTime = DeliveryFilter()
        byTime.since = Timestamp(seconds: 0)
        byTime.until = Timestamp(seconds: 4_000_000_000)
        var everything = byEndpoint
        everything.state = .dead
        everything.eventType = "a"
        everything.since = Timestamp(seconds: 0)
        filters += [
            ("--endpoint", byEndpoint), ("--event-type", byType), ("--since --until", byTime),
            ("all", everything),
        ]
        for (what, filter) in filters {
            // Pending and due rows are read from Keysat's pending index and the newest picked
            // (work proportional to the backlog, not to the history); dead rows, which stay
            // until a purge, and every other listing walk (created_at, id) newest first, no sort.
            let fromStateIndex = [.pending, .due].contains(filter.state)
            try assertNoScan(
                statements(store) { _ = try store.deliveries(filter, limit: 20) }, in: store,
                ordered: !fromStateIndex, "deliveries list \(what)")
        }
        for scope in WebhookStore.PurgeScope.allCases {
            for dryRun in [true, false] {
                try assertNoScan(
                    statements(store) {
                        _ = try store.purge(scope: scope, before: Timestamp(seconds: 0), dryRun: dryRun)
                    },
                    in: store, "purge \(scope.rawValue)\(dryRun ? " --dry-run" : "")")
            }
        }
    }

    /// A delivery's attempt history is read, deleted and counted through the history's two
    /// indexes (schema step 12), never by scanning it; recording reads no index by delivery id.
    func testTheAttemptHistoryIsNeverScanned() throws {
        let clock = FixedClock(Timestamp(seconds: 1_800_000_000))
        let (store, endpoint) = try store(events: 20, clock: clock)
        let due = try store.dueDeliveries(dueBy: clock.now(), retries: false, after: nil, limit: 100)
        let outcomes = due.map {
            AttemptOutcome(
                deliveryID: $0.id, previousAttemptCount: 0, result: .delivered, statusCode: 204, error: nil,
                startedAt: clock.now(), finishedAt: clock.now())
        }
        var byRowID = outcomes
        for index in byRowID.indices { byRowID[index].rowID = due[index].rowID }
        let recorded = try statements(store) { try store.record(Array(byRowID[0..<10])) }
        try assertNoScan(recorded, in: store, "record")
        try assertNoScan(
            statements(store) { try store.record(Array(outcomes[10...])) }, in: store, "record by id")
        for sql in recorded where sql.contains("webhook_delivery_attempts") {
            for step in try plan(sql, in: store) {
                XCTAssertFalse(step.contains("(delivery_id"), "record: \(step)\n\(sql)")
            }
        }
        try assertNoScan(
            statements(store) { _ = try store.attempts(deliveryID: due[0].id) }, in: store, "deliveries show")
        try assertNoScan(
            statements(store) { _ = try store.failingSince(endpointID: endpoint.id) }, in: store,
            "failing since")
        for dryRun in [true, false] {
            try assertNoScan(
                statements(store) {
                    _ = try store.purge(
                        scope: .delivered, before: Timestamp(seconds: 4_000_000_000), dryRun: dryRun)
                },
                in: store, "purge deleting\(dryRun ? " --dry-run" : "")")
        }
        try assertNoScan(
            statements(store) { _ = try store.removeEndpoint(id: endpoint.id, force: true) }, in: store,
            "endpoint remove")
    }

    /// The check itself fails on a scan: a query without an index is caught.
    func testTheCheckCatchesAScan() throws {
        let store = try WebhookStore(path: path, create: true)
        let steps = try plan("SELECT count(*) FROM webhook_deliveries WHERE last_error = 'x'", in: store)
        XCTAssertTrue(
            steps.contains { $0.hasPrefix("SCAN webhook_deliveries") && !$0.contains(" USING ") }, "\(steps)")
    }
}
