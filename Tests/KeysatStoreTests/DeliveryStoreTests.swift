import Glibc
import KeysatCore
import KeysatStore
import XCTest

/// SQLite's own side of a run, on a real file: its history numbering, its schema steps, its
/// listing plans and totals. What every backend must do is in StoreProtocolTests.
final class DeliveryStoreTests: XCTestCase {
    private let path = "/tmp/keysat-delivery-store-test-\(UInt64.random(in: 0...UInt64.max)).db"
    private let clock = FixedClock(Timestamp(seconds: 1_800_000_000))
    private var generator = SystemRandomNumberGenerator()

    override func tearDown() {
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
    }

    private func storeWithDeliveries(_ count: Int) throws -> (WebhookStore, [DueDelivery]) {
        let store = try WebhookStore(path: path, create: true, clock: clock)
        _ = try store.addEndpoint(
            url: "http://h/", secret: "0123456789abcdef", eventTypes: ["a"], description: "",
            using: &generator)
        for n in 0..<count {
            _ = try store.enqueue(
                eventType: "a", data: Array(String(n).utf8), idempotencyKey: nil, using: &generator)
        }
        let due = try store.dueDeliveries(dueBy: clock.now(), retries: false, after: nil, limit: 100)
        return (store, due)
    }

    private func outcome(_ delivery: DueDelivery, previous: Int, _ result: AttemptOutcome.Result)
        -> AttemptOutcome
    {
        AttemptOutcome(
            deliveryID: delivery.id, previousAttemptCount: previous, result: result, statusCode: 500,
            error: "non-2xx response: HTTP 500, empty body", startedAt: clock.now(), finishedAt: clock.now())
    }

    private func attemptRows(_ store: WebhookStore) throws -> Int? {
        try store.database.prepare("SELECT count(*) FROM webhook_delivery_attempts").first {
            $0.integer(0) ?? -1
        }
    }

    /// Schema step 12: a delivery's attempts share a history number, the id of its first attempt,
    /// so every new attempt goes to the end of the history's index; attempts written without a
    /// number (before the step, by an older binary or another program) are still found, and a
    /// number written wrong by someone else brings in no other delivery's attempts.
    func testTheHistoryIsAppendedInTimeOrderAndRowsWithoutANumberStayFound() throws {
        let (store, due) = try storeWithDeliveries(4)
        let retryAt = clock.now().adding(seconds: 5)
        try store.record(due[0..<3].map { outcome($0, previous: 0, .retry(at: retryAt)) })
        var byID = outcome(due[1], previous: 1, .retry(at: retryAt))
        byID.rowID = 0
        var byRowID = outcome(due[0], previous: 1, .dead)
        byRowID.rowID = due[0].rowID
        try store.record([byRowID, byID])
        let rows = try store.database.prepare(
            "SELECT id, delivery_id, history_id FROM webhook_delivery_attempts ORDER BY id"
        ).rows { ($0.integer(0) ?? -1, $0.string(1), $0.integer(2)) }
        XCTAssertEqual(rows.map(\.0), [1, 2, 3, 4, 5])
        XCTAssertEqual(rows.map(\.1), [due[0].id, due[1].id, due[2].id, due[0].id, due[1].id])
        XCTAssertEqual(rows.map(\.2), [1, 2, 3, 1, 2], "the number is the first attempt's id")
        for (index, number) in [(0, 1), (1, 2), (2, 3)] {
            XCTAssertEqual(
                try store.database.prepare(
                    "SELECT keysat_webhooks_history FROM webhook_deliveries WHERE id = ?"
                )
                .first([.text(due[index].id)]) { $0.integer(0) }, number)
        }
        XCTAssertEqual(try store.attempts(deliveryID: due[0].id).map(\.attemptNumber), [1, 2])
        XCTAssertEqual(try store.attempts(deliveryID: due[1].id).map(\.attemptNumber), [1, 2])

        // Rows without a number (as keysat-deliver wrote them before step 12), and one claiming
        // due[0]'s number for due[3].
        try store.database.execute(
            """
            INSERT INTO webhook_delivery_attempts (delivery_id, attempt_number, started_at, duration_ms)
                VALUES ('\(due[3].id)', 1, '2026-01-01T00:00:00.000000Z', 1),
                       ('\(due[3].id)', 2, '2026-01-01T00:01:00.000000Z', 1);
            INSERT INTO webhook_delivery_attempts (delivery_id, attempt_number, started_at, duration_ms, history_id)
                VALUES ('\(due[3].id)', 9, '2026-01-01T00:02:00.000000Z', 1, 1);
            UPDATE webhook_deliveries SET attempt_count = 2 WHERE id = '\(due[3].id)';
            """)
        XCTAssertEqual(try store.attempts(deliveryID: due[3].id).map(\.attemptNumber), [1, 2])
        XCTAssertEqual(
            try store.attempts(deliveryID: due[0].id).map(\.attemptNumber), [1, 2],
            "another delivery's row under this number is not this delivery's")
        try store.record([outcome(due[3], previous: 2, .dead)])
        XCTAssertEqual(try store.attempts(deliveryID: due[3].id).map(\.attemptNumber), [1, 2, 3])
        try store.database.execute("DELETE FROM webhook_delivery_attempts WHERE attempt_number = 9")

        // Deleting the endpoint takes every attempt with it, numbered or not.
        let endpoint = try store.delivery(id: due[3].id).endpointID
        XCTAssertEqual(try store.removeEndpoint(id: endpoint, force: true), 4)
        XCTAssertEqual(try attemptRows(store), 0)
    }

    /// A database as schema step 11 left it, with attempts keyed by delivery id only, is brought
    /// to step 12 when opened: its history is still found, purged and extended.
    func testADatabaseWithHistoryFromBeforeStep12KeepsIt() throws {
        let (store, due) = try storeWithDeliveries(2)
        try store.database.execute(
            """
            DROP INDEX idx_keysat_webhooks_attempts_history;
            DROP INDEX idx_keysat_webhooks_attempts_unnumbered;
            ALTER TABLE webhook_delivery_attempts DROP COLUMN history_id;
            ALTER TABLE webhook_deliveries DROP COLUMN keysat_webhooks_history;
            CREATE INDEX idx_webhook_delivery_attempts_delivery ON webhook_delivery_attempts(delivery_id, attempt_number);
            ALTER TABLE keysat_webhooks_idempotency DROP COLUMN request_hash;
            ALTER TABLE webhook_endpoints DROP COLUMN retry_schedule;
            ALTER TABLE webhook_endpoints DROP COLUMN retry_jitter;
            ALTER TABLE webhook_endpoints DROP COLUMN custom_headers;
            ALTER TABLE webhook_endpoints DROP COLUMN client_cert;
            ALTER TABLE webhook_endpoints DROP COLUMN client_key;
            ALTER TABLE webhook_endpoints DROP COLUMN signing_key;
            ALTER TABLE webhook_endpoints DROP COLUMN previous_signing_key;
            ALTER TABLE webhook_endpoints DROP COLUMN keysat_signature;
            ALTER TABLE keysat_webhooks_endpoint_health DROP COLUMN disabled_failing_since;
            ALTER TABLE keysat_webhooks_endpoint_health DROP COLUMN probed_at;
            ALTER TABLE keysat_webhooks_endpoint_health DROP COLUMN streak_reset_at;
            ALTER TABLE webhook_endpoints DROP COLUMN rate_limit;
            DROP TABLE keysat_webhooks_rate_buckets;
            DROP INDEX idx_keysat_webhooks_deliveries_key;
            ALTER TABLE webhook_deliveries DROP COLUMN keysat_webhooks_ordering_key;
            ALTER TABLE webhook_deliveries DROP COLUMN keysat_webhooks_sequence;
            ALTER TABLE webhook_endpoints DROP COLUMN order_by;
            ALTER TABLE webhook_endpoints DROP COLUMN order_on_dead;
            DROP TABLE keysat_webhooks_key_sequences;
            ALTER TABLE webhook_endpoints DROP COLUMN event_filter;
            DELETE FROM keysat_webhooks_schema WHERE version >= 12;
            INSERT INTO webhook_delivery_attempts (delivery_id, attempt_number, started_at, duration_ms, status_code)
                VALUES ('\(due[0].id)', 1, '2026-01-01T00:00:00.000000Z', 1, 500),
                       ('\(due[1].id)', 1, '2026-01-01T00:00:00.000000Z', 1, 204);
            UPDATE webhook_deliveries SET attempt_count = 1;
            UPDATE webhook_deliveries SET delivered_at = '2026-01-01T00:00:00.000000Z', next_attempt_at = NULL
                WHERE id = '\(due[1].id)';
            """)
        let reopened = try WebhookStore(path: path, create: false, clock: clock)
        XCTAssertEqual(try reopened.schemaVersion(), 19)
        let indexes = try reopened.database.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'webhook_delivery_attempts' ORDER BY name"
        ).rows { $0.string(0) }
        XCTAssertEqual(
            indexes, ["idx_keysat_webhooks_attempts_history", "idx_keysat_webhooks_attempts_unnumbered"])
        try reopened.record([outcome(due[0], previous: 1, .dead)])
        XCTAssertEqual(try reopened.attempts(deliveryID: due[0].id).map(\.attemptNumber), [1, 2])
        XCTAssertEqual(try reopened.attempts(deliveryID: due[1].id).map(\.attemptNumber), [1])
        let purged = try reopened.purge(
            scope: .allFinished, before: Timestamp(seconds: 4_000_000_000), dryRun: true)
        XCTAssertEqual(purged.deliveries, 2)
        XCTAssertEqual(purged.attempts, 3)
        let deleted = try reopened.purge(
            scope: .allFinished, before: Timestamp(seconds: 4_000_000_000), dryRun: false)
        XCTAssertEqual(deleted.attempts, 3)
        XCTAssertEqual(try attemptRows(reopened), 0)
    }

    /// `deliveries list --status due|pending` looks at the newest rows first and reads the whole
    /// backlog only when they hold too few: either way the answer is the newest matching rows, as
    /// a plain sort of the table (NOT INDEXED) gives them.
    func testListingDueOrPendingGivesTheNewestWhereverTheBacklogIs() throws {
        let (store, due) = try storeWithDeliveries(1)
        // 12,000 more rows, one second apart, delivered but for the 30 oldest and the 5 newest.
        try store.database.execute(
            """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12000)
            INSERT INTO webhook_deliveries (id, endpoint_id, event_type, payload_json, attempt_count, next_attempt_at,
                                            delivered_at, created_at)
            SELECT printf('%08d-0000-4000-8000-000000000000', i), '\(due[0].endpointID)', 'a', '{}', 0,
                   CASE WHEN i <= 30 OR i > 11995 THEN '2020-01-01T00:00:00.000000Z' END,
                   CASE WHEN i <= 30 OR i > 11995 THEN NULL ELSE '2020-01-01T00:00:00.000000Z' END,
                   strftime('%Y-%m-%dT%H:%M:%S.000000Z', '2020-01-01', '+' || i || ' seconds')
            FROM n;
            DELETE FROM webhook_deliveries WHERE id = '\(due[0].id)';
            """)
        func reference(_ state: DeliveryRecord.State, _ limit: Int) throws -> [String] {
            try store.database.prepare(
                """
                SELECT d.id FROM webhook_deliveries AS d NOT INDEXED WHERE \(state == .due
                    ? "d.delivered_at IS NULL AND d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= '2030'"
                    : "d.delivered_at IS NULL AND d.next_attempt_at IS NOT NULL")
                ORDER BY d.created_at DESC, d.id DESC LIMIT \(limit)
                """
            ).rows { $0.string(0) }
        }
        for state in [DeliveryRecord.State.due, .pending] {
            for limit in [3, 5, 20, 100] {
                var filter = DeliveryFilter()
                filter.state = state
                XCTAssertEqual(
                    try store.deliveries(filter, limit: limit).map(\.id), try reference(state, limit),
                    "\(state) \(limit)")
                filter.endpointID = due[0].endpointID
                XCTAssertEqual(
                    try store.deliveries(filter, limit: limit).map(\.id), try reference(state, limit),
                    "\(state) \(limit) --endpoint")
            }
        }
        XCTAssertEqual(try reference(.due, 100).count, 35)
    }

    /// An attempt id at the top of the range, written by someone else, leaves no room for the
    /// next ids: outcomes are still recorded and their history found.
    func testAnAttemptIdAtTheTopOfTheRangeStopsNothing() throws {
        let (store, due) = try storeWithDeliveries(2)
        try store.database.execute(
            """
            INSERT INTO webhook_delivery_attempts (id, delivery_id, attempt_number, started_at, duration_ms)
                VALUES (9223372036854775807, 'someone else''s', 1, '2026-01-01T00:00:00.000000Z', 1)
            """)
        try store.record(due.map { outcome($0, previous: 0, .dead) })
        for delivery in due {
            XCTAssertEqual(try store.attempts(deliveryID: delivery.id).map(\.attemptNumber), [1])
            XCTAssertEqual(try store.delivery(id: delivery.id).status, .dead)
        }
    }

    /// The rows and delivered rows per endpoint that `stats` reads are kept by triggers through
    /// deliveries, re-queues, deletions and a delivery moved to another endpoint by hand: they
    /// always equal a count of the table.
    func testTheTotalsPerEndpointFollowEveryChange() throws {
        let (store, due) = try storeWithDeliveries(6)
        let other = try store.addEndpoint(
            url: "http://i/", secret: "0123456789abcdef", eventTypes: ["a"], description: "",
            using: &generator)
        _ = try store.enqueue(eventType: "a", data: Array("7".utf8), idempotencyKey: nil, using: &generator)
        func assertTotals(_ when: String, line: UInt = #line) throws {
            let kept = try store.database.prepare(
                "SELECT endpoint_id, deliveries, delivered FROM keysat_webhooks_totals WHERE deliveries > 0 ORDER BY 1"
            ).rows { [$0.string(0), String($0.integer(1) ?? -1), String($0.integer(2) ?? -1)] }
            let counted = try store.database.prepare(
                "SELECT endpoint_id, count(*), count(delivered_at) FROM webhook_deliveries GROUP BY 1 ORDER BY 1"
            ).rows { [$0.string(0), String($0.integer(1) ?? -1), String($0.integer(2) ?? -1)] }
            XCTAssertEqual(kept, counted, when, line: line)
        }
        try assertTotals("enqueued")
        var outcomes = due[0..<4].map { outcome($0, previous: 0, .delivered) }
        outcomes.append(outcome(due[4], previous: 0, .dead))
        try store.record(outcomes)
        try assertTotals("delivered")
        try store.database.execute(
            "UPDATE webhook_deliveries SET endpoint_id = '\(other.id)' WHERE id IN ('\(due[0].id)', '\(due[5].id)')"
        )
        try assertTotals("moved by hand")
        _ = try store.retry(ids: [due[1].id], force: true)
        try assertTotals("re-queued")
        try store.database.execute(
            "DELETE FROM webhook_deliveries WHERE id IN ('\(due[2].id)', '\(due[0].id)')")
        try assertTotals("deleted")
    }
}
