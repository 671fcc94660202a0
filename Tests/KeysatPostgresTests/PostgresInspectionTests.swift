import Foundation
import KeysatCore
import KeysatTestSupport
import XCTest

@testable import KeysatPostgres
@testable import KeysatStore

/// `DeliveryInspection` and `QueueMaintenance` on PostgreSQL, against a real server, checked
/// against SQLite's `WebhookStore` doing the same on the same rows (an independent
/// implementation of the same semantics): the rows are written with plain SQL to both, then
/// every answer is compared.
final class PostgresInspectionTests: XCTestCase {
    nonisolated(unsafe) private static var slot = ClusterSlot.notStarted
    nonisolated(unsafe) private static var databases = 0
    private var cluster: PostgresTestCluster!
    private var folder: URL!

    override class func setUp() {
        super.setUp()
        slot = ClusterSlot.start()
    }

    override class func tearDown() {
        slot.stop()
        slot = .notStarted
        super.tearDown()
    }

    override func setUpWithError() throws {
        cluster = try Self.slot.cluster()
        folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "pg-inspect-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let folder { try? FileManager.default.removeItem(at: folder) }
    }

    // MARK: - Fixtures

    /// A database of its own for this test, made over the superuser's socket connection,
    /// with the schema applied by `PostgresStore`.
    private func freshPostgres() throws -> PostgresStore {
        Self.databases += 1
        let name = "inspect_\(Self.databases)"
        let admin = try PostgresConnection(
            cluster.connectionString(with: [
                "host": cluster.directory, "user": "postgres", "dbname": "postgres", "passfile": nil,
            ]))
        try admin.execute("CREATE DATABASE \(name) OWNER keysat")
        return try PostgresStore(cluster.connectionString(with: ["dbname": name]), create: true)
    }

    /// A connection string to `pg`'s database, for a second session (another host).
    private func sameDatabase(as pg: PostgresStore) throws -> String {
        cluster.connectionString(with: [
            "dbname": try XCTUnwrap(
                pg.connection.execute("SELECT current_database()").rows.first?.first ?? nil)
        ])
    }

    private func freshSQLite() throws -> WebhookStore {
        try WebhookStore(path: folder.appendingPathComponent("q-\(UUID().uuidString).db").path, create: true)
    }

    static let e1 = "e1000000-0000-4000-8000-000000000001"
    static let e2 = "e2000000-0000-4000-8000-000000000002"
    static let e3 = "e3000000-0000-4000-8000-000000000003"  // disabled
    static let future = "2100-01-01T00:00:00.000000+00:00"

    struct Row {
        var id: String
        var endpoint: String
        var type = "license.issued"
        var attempts = 0
        var next: String?
        var delivered: String?
        var created: String
        var status: Int?
        var error: String?
    }

    static func at(_ day: String, _ time: String = "00:00:00") -> String {
        "2024-\(day)T\(time).000000+00:00"
    }

    /// Every state a row can be in, two endpoints and a disabled one, two event types, ties
    /// on `created_at`, ids sharing prefixes.
    static let rows: [Row] = [
        Row(id: "d1a00000-p1", endpoint: e1, next: at("02-01"), created: at("01-01", "00:00:01")),
        Row(
            id: "d1a00001-p2", endpoint: e1, type: "license.revoked", attempts: 2, next: future,
            created: at("01-01", "00:00:02"), status: 500, error: "HTTP 500"),
        Row(id: "d2000000-p3", endpoint: e2, attempts: 1, next: at("01-03"), created: at("01-02")),
        Row(
            id: "d3000000-dl1", endpoint: e1, attempts: 1, delivered: at("01-03", "01:00:00"),
            created: at("01-03"), status: 200),
        Row(
            id: "d4000000-dl2", endpoint: e2, type: "license.revoked", attempts: 1, delivered: at("03-01"),
            created: at("02-15"), status: 204),
        Row(
            id: "d5000000-dl3", endpoint: e1, attempts: 2, delivered: at("06-01"), created: at("05-01"),
            status: 200),
        Row(
            id: "d6000000-dd1", endpoint: e1, attempts: 5, created: at("01-04"), status: 500,
            error: "HTTP 500"),
        Row(
            id: "d7000000-dd2", endpoint: e2, type: "license.revoked", attempts: 3, created: at("02-20"),
            error: "timeout"),
        Row(id: "d8000000-dd3", endpoint: e3, attempts: 1, created: at("04-01"), error: "endpoint disabled"),
        Row(id: "d9000000-u1", endpoint: e1, created: at("01-05")),
        Row(
            id: "da000000-dl4", endpoint: e2, attempts: 1, delivered: at("01-10", "00:00:05"),
            created: at("01-10"), status: 200),
        Row(id: "da000001-dd4", endpoint: e2, attempts: 1, created: at("01-10"), status: 410),
        Row(id: "db000000-gone", endpoint: "e9000000-gone", attempts: 1, created: at("01-11")),
    ]

    /// Attempts: (delivery, number, started, status).
    static let attempts: [(String, Int, String, Int?)] = [
        ("d1a00001-p2", 1, at("01-01", "00:01:00"), 500), ("d1a00001-p2", 2, at("01-01", "00:02:00"), 500),
        ("d2000000-p3", 1, at("01-02", "00:01:00"), nil), ("d3000000-dl1", 1, at("01-03", "01:00:00"), 200),
        ("d4000000-dl2", 1, at("03-01"), 204), ("d5000000-dl3", 1, at("05-01"), 500),
        ("d5000000-dl3", 2, at("06-01"), 200),
        ("d6000000-dd1", 1, at("01-04"), 500), ("d6000000-dd1", 2, at("01-05"), 500),
        ("d7000000-dd2", 1, at("02-20"), nil),
        ("da000000-dl4", 1, at("01-10", "00:00:05"), 200), ("da000001-dd4", 1, at("01-10", "00:00:06"), 410),
    ]

    private func load(_ pg: PostgresStore, _ sqlite: WebhookStore, rows: [Row] = rows) throws {
        for (id, active) in [(Self.e1, 1), (Self.e2, 1), (Self.e3, 0)] {
            try pg.connection.execute(
                """
                INSERT INTO webhook_endpoints (id, url, secret, active, created_at, updated_at)
                VALUES ($1, 'https://example.com/' || $1, 'secret', $2, $3, $3)
                """, [id, String(active), Self.at("01-01")])
            try sqlite.database.prepare(
                """
                INSERT INTO webhook_endpoints (id, url, secret, event_types, active, description, created_at, updated_at)
                VALUES (?1, 'https://example.com/' || ?1, 'secret', '["*"]', ?2, '', ?3, ?3)
                """
            ).run([.text(id), .integer(Int64(active)), .text(Self.at("01-01"))])
        }
        // A delivery whose endpoint was removed (by another program: this one refuses).
        try sqlite.database.execute("PRAGMA foreign_keys = OFF")
        defer { try? sqlite.database.execute("PRAGMA foreign_keys = ON") }
        for row in rows {
            let payload = #"{"id":"\#(row.id)","data":{"n":1}}"#
            try pg.connection.execute(
                """
                INSERT INTO webhook_deliveries (id, endpoint_id, event_type, payload_json, attempt_count, next_attempt_at,
                    last_status_code, last_error, delivered_at, created_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                """,
                [
                    row.id, row.endpoint, row.type, payload, String(row.attempts), row.next,
                    row.status.map(String.init),
                    row.error, row.delivered, row.created,
                ])
            try sqlite.database.prepare(
                """
                INSERT INTO webhook_deliveries (id, endpoint_id, event_type, payload_json, attempt_count, next_attempt_at,
                    last_status_code, last_error, delivered_at, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
            ).run([
                .text(row.id), .text(row.endpoint), .text(row.type), .text(payload),
                .integer(Int64(row.attempts)),
                .optional(row.next), .optional(row.status), .optional(row.error), .optional(row.delivered),
                .text(row.created),
            ])
        }
        for (delivery, number, started, status) in Self.attempts
        where rows.contains(where: { $0.id == delivery }) {
            try pg.connection.execute(
                """
                INSERT INTO webhook_delivery_attempts (delivery_id, attempt_number, started_at, duration_ms, status_code)
                VALUES ($1, $2, $3, 12, $4)
                """, [delivery, String(number), started, status.map(String.init)])
            try sqlite.database.prepare(
                """
                INSERT INTO webhook_delivery_attempts (delivery_id, attempt_number, started_at, duration_ms, status_code)
                VALUES (?, ?, ?, 12, ?)
                """
            ).run([.text(delivery), .integer(Int64(number)), .text(started), .optional(status)])
        }
    }

    private func pair() throws -> (PostgresStore, WebhookStore) {
        let pg = try freshPostgres()
        let sqlite = try freshSQLite()
        try load(pg, sqlite)
        return (pg, sqlite)
    }

    static func filter(
        _ state: DeliveryRecord.State = .all, endpoint: String? = nil, type: String? = nil,
        since: String? = nil,
        until: String? = nil
    ) -> DeliveryFilter {
        var filter = DeliveryFilter()
        filter.state = state
        filter.endpointID = endpoint
        filter.eventType = type
        filter.since = since.flatMap { Timestamp(rfc3339: $0) }
        filter.until = until.flatMap { Timestamp(rfc3339: $0) }
        return filter
    }

    static var filters: [DeliveryFilter] {
        DeliveryRecord.State.allCases.map { filter($0) }
            + DeliveryRecord.State.allCases.map { filter($0, endpoint: e1) } + [
                filter(type: "license.revoked"), filter(.dead, type: "license.revoked"),
                filter(since: at("01-03")), filter(until: at("02-20")),
                filter(since: at("01-03"), until: at("02-20")),
                filter(.finished, endpoint: e2, since: at("01-10"), until: at("03-01")),
                filter(.pending, endpoint: e2), filter(.due, type: "license.issued"),
                filter(endpoint: "no-such-endpoint"),
            ]
    }

    /// The error message of `body`, or "no error".
    private func failure<T>(_ body: () throws -> T) -> String {
        do {
            _ = try body()
            return "no error"
        } catch {
            let error = KeysatError.from(error)
            return "\(error.exitCode): \(error.message)"
        }
    }

    /// What `body` returns, or its error's exit code and message.
    private func answer<T>(_ body: () throws -> T) -> String {
        do {
            return "\(try body())"
        } catch {
            return failure { throw error }
        }
    }

    /// Each row's status and attempt count, by id: what a re-queue changes.
    private func states(_ store: some DeliveryInspection) throws -> [String: String] {
        Dictionary(
            uniqueKeysWithValues: try store.deliveries(Self.filter(), limit: 1000, payloads: false).map {
                (
                    $0.id,
                    "\($0.status.rawValue) \($0.attemptCount) \($0.lastStatusCode.map(String.init) ?? "-")"
                )
            })
    }

    // MARK: - Listing and showing

    func testListingsAgreeWithSQLiteForEveryFilter() throws {
        let (pg, sqlite) = try pair()
        for filter in Self.filters {
            for (limit, payloads) in [(100, true), (3, false), (1, true)] {
                let expected = try sqlite.deliveries(filter, limit: limit, payloads: payloads)
                let got = try pg.deliveries(filter, limit: limit, payloads: payloads)
                XCTAssertEqual(
                    got.map { $0.json(includePayload: payloads) },
                    expected.map { $0.json(includePayload: payloads) },
                    "state \(filter.state) endpoint \(filter.endpointID ?? "-") type \(filter.eventType ?? "-") "
                        + "since \(filter.since?.rfc3339 ?? "-") until \(filter.until?.rfc3339 ?? "-") limit \(limit)"
                )
                if !payloads { XCTAssertTrue(got.allSatisfy { $0.payload.isEmpty }) }
            }
        }
        XCTAssertEqual(try pg.deliveries(Self.filter(.dead, endpoint: Self.e2), limit: 100).count, 2)
        // Nothing is left out: the fixture has every status.
        XCTAssertEqual(
            Set(try pg.deliveries(Self.filter(), limit: 100).map(\.status)),
            [.pending, .delivered, .dead, .unscheduled])
    }

    func testShowingADeliveryAndItsAttemptsAgreesWithSQLite() throws {
        let (pg, sqlite) = try pair()
        for row in Self.rows {
            XCTAssertEqual(try pg.delivery(id: row.id).json(), try sqlite.delivery(id: row.id).json())
            XCTAssertEqual(
                try pg.attempts(deliveryID: row.id).map(\.json),
                try sqlite.attempts(deliveryID: row.id).map(\.json),
                row.id)
        }
        XCTAssertEqual(try pg.attempts(deliveryID: "d6000000-dd1").map(\.attemptNumber), [1, 2])
        XCTAssertEqual(failure { try pg.delivery(id: "nope") }, failure { try sqlite.delivery(id: "nope") })
        XCTAssertTrue(failure { try pg.delivery(id: "nope") }.hasPrefix("65: no delivery"))
        XCTAssertEqual(try pg.attempts(deliveryID: "nope").count, 0)
    }

    func testIDPrefixesAgreeWithSQLite() throws {
        let (pg, sqlite) = try pair()
        let cases: [(WebhookStore.Record, String)] = [
            (.delivery, "d1a00000-p1"), (.delivery, "d1a00000"), (.delivery, "d1a0"), (.delivery, "d1"),
            (.delivery, "d"), (.delivery, "d2"), (.delivery, "zz"), (.delivery, ""),
            (.delivery, "d1a00000-p1x"),
            (.delivery, "é"), (.endpoint, "e1"), (.endpoint, "e"), (.endpoint, Self.e3), (.endpoint, "d1"),
        ]
        for (kind, text) in cases {
            XCTAssertEqual(
                answer { try pg.fullID(of: kind, text) }, answer { try sqlite.fullID(of: kind, text) },
                "\(kind) \(text)")
        }
        XCTAssertEqual(try pg.fullID(of: .delivery, "d1a00001"), "d1a00001-p2")
        XCTAssertTrue(failure { try pg.fullID(of: .delivery, "d1a") }.contains("ambiguous"))
        // The range is answered by the primary key, not a scan.
        let plan = try pg.connection.execute(
            "EXPLAIN SELECT id FROM webhook_deliveries WHERE id > $1 AND id < $2 ORDER BY id LIMIT 6",
            ["d1", "d2"]
        ).rows.map { $0[0] ?? "" }.joined(separator: "\n")
        XCTAssertTrue(plan.contains("webhook_deliveries_pkey"), plan)
    }

    // MARK: - Re-queueing

    func testRetryOfDeadRowsAgreesWithSQLite() throws {
        let (pg, sqlite) = try pair()
        let filter = Self.filter(endpoint: Self.e2)
        XCTAssertEqual(try pg.retryDead(filter), try sqlite.retryDead(filter))
        XCTAssertEqual(try states(pg), try states(sqlite))
        XCTAssertEqual(try pg.retryDead(Self.filter()), 3)  // dd1, dd3, gone
        XCTAssertEqual(try sqlite.retryDead(Self.filter()), 3)
        XCTAssertEqual(try states(pg), try states(sqlite))
        XCTAssertEqual(try pg.queueCounts().dead, 0)
        // Due now by the database's clock.
        XCTAssertEqual(
            try pg.connection.execute(
                "SELECT count(*) FROM webhook_deliveries WHERE id = 'd6000000-dd1' AND next_attempt_at <= now()"
            ).rows[0][0], "1")
    }

    func testRetryByIDAgreesWithSQLiteAndRefusesAsItDoes() throws {
        let (pg, sqlite) = try pair()
        for ids in [
            ["d3000000-dl1", "d6000000-dd1"], ["d6000000-dd1", "nope"], ["d3000000-dl1", "d4000000-dl2"],
        ] {
            XCTAssertEqual(
                failure { try pg.retry(ids: ids, force: false) },
                failure { try sqlite.retry(ids: ids, force: false) })
        }
        XCTAssertEqual(try states(pg), try states(sqlite), "a refused retry changes nothing")
        let ids = ["d3000000-dl1", "d6000000-dd1", "d6000000-dd1", "d2000000-p3"]
        XCTAssertEqual(try pg.retry(ids: ids, force: true), try sqlite.retry(ids: ids, force: true))
        XCTAssertEqual(try states(pg), try states(sqlite))
        XCTAssertEqual(try pg.retry(ids: [], force: false), 0)
    }

    /// A row under a live lease is being sent: a re-queue keeps its claim (no other run may
    /// take it meanwhile); an expired claim is cleared with the re-queue.
    func testRetryAndReplayClearOnlyExpiredClaims() throws {
        let (pg, _) = try pair()
        try pg.connection.execute(
            """
            UPDATE webhook_deliveries SET claim_token = gen_random_uuid(),
                lease_expires_at = CASE WHEN id LIKE '%p3' OR id LIKE '%dd1' THEN now() + interval '1 hour'
                                        ELSE now() - interval '1 second' END
            WHERE id IN ('d2000000-p3', 'd1a00000-p1', 'd6000000-dd1', 'd7000000-dd2')
            """)
        XCTAssertEqual(try pg.retry(ids: ["d2000000-p3", "d1a00000-p1"], force: false), 2)
        XCTAssertEqual(try pg.retryDead(Self.filter()), 5)
        let claims = try pg.connection.execute(
            """
            SELECT id, claim_token IS NOT NULL, lease_expires_at > now(), attempt_count, next_attempt_at <= now()
            FROM webhook_deliveries WHERE id IN ('d2000000-p3', 'd1a00000-p1', 'd6000000-dd1', 'd7000000-dd2')
            ORDER BY id
            """
        ).rows
        XCTAssertEqual(
            claims,
            [
                ["d1a00000-p1", "f", nil, "0", "t"], ["d2000000-p3", "t", "t", "0", "t"],
                ["d6000000-dd1", "t", "t", "0", "t"], ["d7000000-dd2", "f", nil, "0", "t"],
            ])
    }

    func testReplayAgreesWithSQLite() throws {
        let (pg, sqlite) = try pair()
        for state in DeliveryRecord.State.allCases {
            let filter = Self.filter(state, until: Self.at("03-01"))
            XCTAssertEqual(
                answer { try pg.replayable(filter) }, answer { try sqlite.replayable(filter) }, "\(state)")
        }
        XCTAssertTrue(
            failure { try pg.replay(Self.filter(.pending)) }.hasPrefix("64: only dead or delivered"))
        let filter = Self.filter(.finished, endpoint: Self.e2)
        XCTAssertEqual(
            try pg.replayable(filter), ["da000000-dl4", "da000001-dd4", "d4000000-dl2", "d7000000-dd2"])
        XCTAssertEqual(try pg.replay(filter), try sqlite.replay(filter))
        XCTAssertEqual(try states(pg), try states(sqlite))
        XCTAssertEqual(try pg.replayable(filter), [])
        XCTAssertEqual(try pg.replay(Self.filter(.delivered)), try sqlite.replay(Self.filter(.delivered)))
        XCTAssertEqual(try states(pg), try states(sqlite))
    }

    func testInactiveEndpointsAgreeWithSQLite() throws {
        let (pg, sqlite) = try pair()
        let ids = Self.rows.map(\.id) + ["nope"]
        XCTAssertEqual(
            try pg.inactiveEndpoints(forDeliveries: ids), try sqlite.inactiveEndpoints(forDeliveries: ids))
        XCTAssertEqual(try pg.inactiveEndpoints(forDeliveries: ids), [Self.e3, "e9000000-gone"])
        XCTAssertEqual(try pg.inactiveEndpoints(forDeliveries: ["d1a00000-p1"]), [])
    }

    // MARK: - Purge

    func testPurgeScopesAgreeWithSQLiteAndWithTheirDryRun() throws {
        let cutoffs = [Self.at("03-01"), Self.at("01-10", "00:00:01"), Self.future, Self.at("01-01")]
        for scope in WebhookStore.PurgeScope.allCases {
            for cutoff in cutoffs.compactMap({ Timestamp(rfc3339: $0) }) {
                for batch in [1, 2, 1000] {
                    let (pg, sqlite) = try pair()
                    let label = "\(scope) before \(cutoff) in batches of \(batch)"
                    let dry = try pg.purge(scope: scope, before: cutoff, dryRun: true, batch: batch)
                    let sqliteDry = try sqlite.purge(scope: scope, before: cutoff, dryRun: true, batch: batch)
                    XCTAssertTrue(dry == sqliteDry, "\(label): \(dry) against SQLite's \(sqliteDry)")
                    XCTAssertEqual(try states(pg).count, Self.rows.count, "a dry run deletes nothing")
                    let done = try pg.purge(scope: scope, before: cutoff, dryRun: false, batch: batch)
                    let sqliteDone = try sqlite.purge(
                        scope: scope, before: cutoff, dryRun: false, batch: batch)
                    XCTAssertTrue(done == dry, "\(label): \(done) deleted, the dry run said \(dry)")
                    XCTAssertTrue(done == sqliteDone, "\(label): \(done) against SQLite's \(sqliteDone)")
                    XCTAssertEqual(try states(pg), try states(sqlite), label)
                    XCTAssertEqual(
                        try pg.connection.execute("SELECT count(*) FROM webhook_delivery_attempts").rows[0][
                            0],
                        String(
                            try sqlite.database.prepare("SELECT count(*) FROM webhook_delivery_attempts")
                                .first {
                                    $0.integer(0) ?? -1
                                } ?? -1), label)
                }
            }
        }
    }

    /// Pending rows are never purged, whatever their age, nor a finished row another session
    /// says it holds (a live lease); an expired lease is no protection.
    func testPurgeNeverTouchesPendingOrLeasedRows() throws {
        let (pg, _) = try pair()
        try pg.connection.execute(
            """
            UPDATE webhook_deliveries SET claim_token = gen_random_uuid(),
                lease_expires_at = now() + CASE WHEN id = 'd6000000-dd1' THEN interval '1 hour' ELSE interval '-1 hour' END
            WHERE id IN ('d6000000-dd1', 'd7000000-dd2')
            """)
        let cutoff = Timestamp(rfc3339: Self.future)!
        let dry = try pg.purge(scope: .allFinished, before: cutoff, dryRun: true)
        let done = try pg.purge(scope: .allFinished, before: cutoff, dryRun: false, batch: 2)
        XCTAssertTrue(dry == done, "\(dry) \(done)")
        XCTAssertEqual(done.deliveries, 8)  // 4 delivered, 5 dead less the leased one
        XCTAssertEqual(
            Set(try pg.deliveries(Self.filter(), limit: 100).map(\.id)),
            ["d1a00000-p1", "d1a00001-p2", "d2000000-p3", "d9000000-u1", "d6000000-dd1"])
        XCTAssertEqual(try pg.attempts(deliveryID: "d1a00001-p2").count, 2, "a pending row keeps its history")
        XCTAssertEqual(try pg.attempts(deliveryID: "d6000000-dd1").count, 2, "a leased row keeps its history")
    }

    /// A row locked by another session (a run writing its outcome) is skipped, not waited
    /// for, and purged by a later purge.
    func testPurgeSkipsARowAnotherSessionHolds() throws {
        let (pg, _) = try pair()
        let other = try PostgresConnection(try sameDatabase(as: pg))
        try other.execute("BEGIN")
        try other.execute("SELECT 1 FROM webhook_deliveries WHERE id = 'd6000000-dd1' FOR UPDATE")
        let first = try pg.purge(
            scope: .dead, before: Timestamp(rfc3339: Self.future)!, dryRun: false, batch: 1000)
        XCTAssertEqual(first.deliveries, 4)
        try other.execute("COMMIT")
        let second = try pg.purge(
            scope: .dead, before: Timestamp(rfc3339: Self.future)!, dryRun: false, batch: 1000)
        XCTAssertEqual(second.deliveries, 1)
        XCTAssertEqual(second.attempts, 2)
    }

    // MARK: - Counts

    func testQueueCountsAndEndpointStatsAgreeWithSQLite() throws {
        let (pg, sqlite) = try pair()
        // Health and minutes as `record` writes them on each: one recent minute, one too old.
        try pg.connection.execute(
            """
            INSERT INTO keysat_webhooks_endpoint_health (endpoint_id, last_success_at, last_failure_at, failure_streak) VALUES ($1, '2024-06-01T00:00:00Z', '2024-06-02T00:00:00Z', 3)
            """, [Self.e1])
        try sqlite.database.prepare(
            "INSERT INTO keysat_webhooks_endpoint_health (endpoint_id, last_success_at, last_failure_at, failure_streak) VALUES (?, ?, ?, 3)"
        ).run([
            .text(Self.e1), .text("2024-06-01T00:00:00.000000+00:00"),
            .text("2024-06-02T00:00:00.000000+00:00"),
        ])
        let now = SystemClock().now()
        for (ago, attempts, successes) in [(Int64(600), 4, 3), (Int64(2 * 86_400), 10, 0)] {
            let minute = now.adding(seconds: -ago)
            try pg.connection.execute(
                "INSERT INTO keysat_webhooks_attempt_minutes VALUES (date_trunc('minute', $1::timestamptz), $2, $3, $4)",
                [minute.rfc3339, Self.e2, String(attempts), String(successes)])
            try sqlite.database.prepare("INSERT INTO keysat_webhooks_attempt_minutes VALUES (?, ?, ?, ?)")
                .run([
                    .text(String(minute.rfc3339.prefix(16))), .text(Self.e2), .integer(Int64(attempts)),
                    .integer(Int64(successes)),
                ])
        }
        var counts = try pg.queueCounts()
        var expected = try sqlite.queueCounts()
        XCTAssertEqual(counts.oldestDueAgeSeconds, expected.oldestDueAgeSeconds, accuracy: 5)
        XCTAssertGreaterThan(counts.oldestDueAgeSeconds, 86_400 * 365)
        counts.oldestDueAgeSeconds = 0
        expected.oldestDueAgeSeconds = 0
        XCTAssertEqual(counts, expected)
        XCTAssertEqual(counts, WebhookStore.QueueCounts(pending: 3, due: 2, delivered: 4, dead: 5))

        let endpoints = try sqlite.endpoints()
        let stats = try pg.endpointStats(for: endpoints)
        let sqliteStats = try sqlite.endpointStats()
        XCTAssertEqual(stats.map(\.endpoint.id), [Self.e1, Self.e2, Self.e3])
        for (got, want) in zip(stats, sqliteStats) {
            XCTAssertEqual(got.pending, want.pending, got.endpoint.id)
            XCTAssertEqual(got.dead, want.dead, got.endpoint.id)
            XCTAssertEqual(got.delivered24h, want.delivered24h, got.endpoint.id)
            XCTAssertEqual(got.successRate24h, want.successRate24h, got.endpoint.id)
            XCTAssertEqual(got.lastSuccess, want.lastSuccess, got.endpoint.id)
            XCTAssertEqual(got.lastFailure, want.lastFailure, got.endpoint.id)
            XCTAssertEqual(got.failureStreak, want.failureStreak, got.endpoint.id)
        }
        XCTAssertEqual(stats.map(\.pending), [2, 1, 0])
        XCTAssertEqual(stats.map(\.dead), [1, 2, 1])
        XCTAssertEqual(stats[1].successRate24h, 0.75)
        XCTAssertEqual(try pg.endpointStats(for: []).count, 0)
    }

    func testMetricsFailuresCountEveryHostsFailure() throws {
        let pg = try freshPostgres()
        XCTAssertEqual(try pg.metricsFailures(), WebhookStore.MetricsFailures(count: 0, last: nil))
        let location = try sameDatabase(as: pg)
        let moment = Timestamp(rfc3339: "2024-05-01T10:00:00.000000+00:00")!
        // Two hosts at once, 40 failures each.
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            do {
                let store = try PostgresStore(location)
                for _ in 0..<40 { try store.recordMetricsFailure(at: moment) }
            } catch {
                XCTFail("\(error)")
            }
        }
        XCTAssertEqual(try pg.metricsFailures(), WebhookStore.MetricsFailures(count: 80, last: moment))
        for (stored, next) in [
            ("abc", 1), ("-4", 1), ("+7", 8), ("9223372036854775807", Int.max), ("99999999999999999999", 1),
        ] {
            try pg.connection.execute(
                "UPDATE keysat_webhooks_state SET value = $1 WHERE name = 'metrics_failures'", [stored])
            try pg.recordMetricsFailure(at: moment)
            XCTAssertEqual(try pg.metricsFailures().count, next, stored)
        }
    }

    // MARK: - Test deliveries

    /// `endpoint test`'s row is written claimed by this session: no run takes it while it is
    /// sent, even once due, and its outcome is written with the claim token through `record`.
    func testATestDeliveryOfADisabledOrMissingEndpointIsRefusedAsOnSQLite() throws {
        let (pg, sqlite) = try pair()
        var generator = SystemRandomNumberGenerator()
        for endpoint in [Self.e3, "nope"] {
            XCTAssertEqual(
                failure {
                    try pg.writeTestDelivery(
                        endpointID: endpoint, eventType: "webhook.test", data: Array("{}".utf8),
                        sendingSeconds: 70,
                        using: &generator)
                },
                failure {
                    try sqlite.writeTestDelivery(
                        endpointID: endpoint, eventType: "webhook.test", data: Array("{}".utf8),
                        sendingSeconds: 70,
                        using: &generator)
                })
        }
        XCTAssertEqual(try pg.deliveries(Self.filter(), limit: 100).count, Self.rows.count, "nothing written")
    }

    func testATestDeliveryIsClaimedUntilItsOutcomeIsRecorded() throws {
        let (pg, _) = try pair()
        var generator = SystemRandomNumberGenerator()
        let id = try pg.writeTestDelivery(
            endpointID: Self.e1, eventType: "webhook.test", data: Array(#"{"test":true}"#.utf8),
            sendingSeconds: 70.2,
            using: &generator)
        let record = try pg.delivery(id: id)
        XCTAssertEqual(record.status, .pending)
        XCTAssertEqual(
            String(decoding: record.payload, as: UTF8.self),
            #"{"event_type":"webhook.test","timestamp":"\#(record.createdAt)","data":{"test":true}}"#,
            "the envelope's time is the row's, the database's clock")
        let times = try pg.connection.execute(
            """
            SELECT extract(epoch FROM next_attempt_at - created_at), next_attempt_at = lease_expires_at
            FROM webhook_deliveries WHERE id = $1
            """, [id]
        ).rows[0]
        XCTAssertEqual(times, ["71.000000", "t"])
        let due = try XCTUnwrap(try pg.dueDelivery(id: id))
        let token = try XCTUnwrap(due.claimToken)
        XCTAssertEqual(due.url, "https://example.com/\(Self.e1)")

        // Made due at once (an operator's retry): still held by the test's lease.
        XCTAssertEqual(try pg.retry(ids: [id], force: false), 1)
        let page = try pg.dueDeliveries(dueBy: SystemClock().now(), retries: false, after: nil, limit: 100)
        XCTAssertFalse(page.contains { $0.id == id })
        var other = due
        other.claimToken = nil
        guard case .taken = try pg.claim(other, perEndpoint: 10, inFlight: 0, leaseSeconds: 60) else {
            return XCTFail("a run claimed the row under the test's lease")
        }
        // Another session asking for the row gets no token.
        XCTAssertNil(try PostgresStore(try sameDatabase(as: pg)).dueDelivery(id: id)?.claimToken)

        // An outcome without the claim is not applied; the test's is.
        let started = SystemClock().now()
        var outcome = AttemptOutcome(
            deliveryID: id, previousAttemptCount: 0, result: .delivered, statusCode: 200, error: nil,
            startedAt: started, finishedAt: started)
        outcome.rowID = due.rowID
        outcome.endpointID = Self.e1
        try pg.record([outcome])
        XCTAssertEqual(try pg.delivery(id: id).status, .pending)
        outcome.claimToken = token
        try pg.record([outcome])
        XCTAssertEqual(try pg.delivery(id: id).status, .delivered)
        XCTAssertEqual(try pg.attempts(deliveryID: id).map(\.statusCode), [200, 200])
        XCTAssertEqual(
            try pg.connection.execute(
                "SELECT claim_token, lease_expires_at FROM webhook_deliveries WHERE id = $1", [id]
            )
            .rows, [[nil, nil]])
    }
}
