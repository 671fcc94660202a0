import Foundation
import XCTest

/// `keysat-webhooks copy` run as an operator runs it, between SQLite files and a real
/// PostgreSQL server (scripts/pg-test-cluster.sh), every result read back with the sqlite3 and
/// psql command-line tools, independently of the code under test.
final class CopyTests: XCTestCase {
    nonisolated(unsafe) private static var cluster: String?
    nonisolated(unsafe) private static var unavailable: String?
    nonisolated(unsafe) private static var databases = 0
    private static let script = Binaries.packageRoot.appendingPathComponent("scripts/pg-test-cluster.sh").path

    override class func setUp() {
        super.setUp()
        let directory = "/tmp/keysat-pgc-\(getpid())"
        let (status, stderr) = runScript(["start", directory])
        switch status {
        case 0: cluster = directory
        case 69: unavailable = stderr
        default: unavailable = "pg-test-cluster.sh start exited \(status): \(stderr)"
        }
    }

    override class func tearDown() {
        if let cluster { _ = runScript(["stop", cluster]) }
        cluster = nil
        super.tearDown()
    }

    /// Runs scripts/pg-test-cluster.sh, waiting with waitpid(2): Foundation's `Process` never
    /// returns from `waitUntilExit()` once the script has started the server (as
    /// PostgresTestCluster found).
    private static func runScript(_ arguments: [String]) -> (Int32, String) {
        let errors = FileManager.default.temporaryDirectory.appendingPathComponent("pgc-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: errors) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv = ([script] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid = pid_t()
        guard posix_spawn(&pid, script, &actions, nil, argv, environ) == 0 else {
            return (70, "cannot run \(script)")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (code, (try? String(contentsOfFile: errors, encoding: .utf8)) ?? "")
    }

    /// A new, empty database on the cluster; its postgresql:// URI (password in a passfile).
    private func freshDatabase() throws -> String {
        guard let directory = Self.cluster else {
            if let reason = Self.unavailable, reason.contains("not installed") || reason.contains("missing") {
                throw XCTSkip(reason)
            }
            XCTFail(Self.unavailable ?? "no cluster")
            throw XCTSkip("no cluster")
        }
        Self.databases += 1
        let name = "copy\(Self.databases)"
        let port = try String(contentsOfFile: directory + "/port", encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        let admin = "host=\(directory) port=\(port) user=postgres dbname=postgres sslmode=disable"
        for sql in ["DROP DATABASE IF EXISTS \(name)", "CREATE DATABASE \(name) OWNER keysat"] {
            let result = try runTool("/usr/bin/psql", [admin, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
            XCTAssertEqual(result.status, 0, result.stderr)
        }
        return "postgresql://keysat@127.0.0.1:\(port)/\(name)?passfile=\(directory)/pgpass&sslmode=disable"
    }

    /// The rows of one query through psql, columns joined by `|`.
    private func psql(_ uri: String, _ sql: String) throws -> [String] {
        let result = try runTool("/usr/bin/psql", [uri, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
        XCTAssertEqual(result.status, 0, result.stderr)
        return result.lines
    }

    private func copy(_ arguments: [String]) throws -> ProcessResult {
        try runTool("keysat-webhooks", ["copy"] + arguments)
    }

    /// A queue with every column used, written with sqlite3 as another program would: an
    /// ordered endpoint whose deliveries were written in an order that is neither their ids'
    /// nor their creation times', a rotated secret, a disabled endpoint, pending, dead and
    /// delivered rows, payloads with non-ASCII text and odd spacing, the attempt history with
    /// its numbers, an idempotency key, a declared event type, health and per-minute summaries.
    private func makeSource(_ scratch: Scratch, name: String = "source.db", prefix: String = "") throws
        -> String
    {
        let path = scratch.file(name)
        XCTAssertEqual(try runTool("keysat-webhooks", ["init", "--db", path]).status, 0)
        let p = prefix
        try SQL.execute(
            path,
            """
            INSERT INTO webhook_endpoints (id, url, secret, event_types, active, description, created_at, updated_at,
                previous_secret, previous_secret_expires_at, disabled_reason, disabled_at, ordered, retry_schedule,
                retry_jitter, custom_headers, client_cert, client_key, signing_key, previous_signing_key, keysat_signature, rate_limit, event_filter) VALUES
              ('\(p)ep_b', 'https://b.example/hook', 'secret-b', '["*"]', 1, 'ordered one', '2026-01-02T03:04:05.123456+00:00',
               '2026-01-02T03:04:05.999999+00:00', 'old-b', '2026-02-01T00:00:00.000001+00:00', NULL, NULL, 1, '5s,1h', 20, '["X-Tenant: 42","Authorization: Bearer ü"]',
               '/etc/keysat/b.pem', '/etc/keysat/b.key',
               'whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTllmU3h6Dt1JKqLSahf2FBSTeius6i4rdBVBKUlrbjxz+A==', 'whsk_old-b', 0, '300/min', '{"data":{"plan":{"$in":["pro","ü"]}}}'),
              ('\(p)ep_a', 'https://a.example/hook', 'secret-a', '["license.issued","x.y"]', 0, 'ünïcode ✓', '2025-12-31T23:59:59.000000+00:00',
               '2026-01-01T00:00:00.000000+00:00', NULL, NULL, 'gone (410)', '2026-01-03T00:00:00.500000+00:00', 0, NULL, NULL, NULL, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL);
            INSERT INTO webhook_deliveries (id, endpoint_id, event_type, payload_json, attempt_count, next_attempt_at,
                last_status_code, last_error, delivered_at, created_at, keysat_webhooks_history) VALUES
              ('\(p)d_3', '\(p)ep_b', 'license.issued', '{"n":3,  "s":"é\\u00e9 \t"}', 2, '2026-01-05T00:00:00.000007+00:00', 503, 'HTTP 503', NULL, '2026-01-04T00:00:00.000003+00:00', 1),
              ('\(p)d_1', '\(p)ep_b', 'license.issued', '{"n":1}', 0, '2026-01-04T00:00:00.000001+00:00', NULL, NULL, NULL, '2026-01-04T00:00:00.000003+00:00', NULL),
              ('\(p)d_2', '\(p)ep_b', 'license.issued', '{"n":2}', 0, '2026-01-04T00:00:00.000002+00:00', NULL, NULL, NULL, '2026-01-04T00:00:00.000001+00:00', NULL),
              ('\(p)d_dead', '\(p)ep_a', 'x.y', '[1, 2]', 8, NULL, 500, 'gave up', NULL, '2026-01-01T00:00:00.000000+00:00', 3),
              ('\(p)d_done', '\(p)ep_a', 'x.y', '"ok"', 1, NULL, 200, NULL, '2026-01-01T00:00:01.250000+00:00', '2026-01-01T00:00:00.000000+00:00', 4);
            INSERT INTO webhook_delivery_attempts (id, delivery_id, attempt_number, started_at, duration_ms, status_code, error,
                response_body, history_id) VALUES
              (1, '\(p)d_3', 1, '2026-01-04T00:00:01.000001+00:00', 12, 503, 'HTTP 503', 'busy', 1),
              (2, '\(p)d_3', 2, '2026-01-04T00:00:02.000002+00:00', 13, 503, 'HTTP 503', NULL, 1),
              (3, '\(p)d_dead', 1, '2026-01-01T00:00:00.100000+00:00', 5000, NULL, 'timed out', NULL, 3),
              (4, '\(p)d_done', 1, '2026-01-01T00:00:01.000000+00:00', 250, 200, NULL, '{"ok":true}', 4);
            INSERT INTO keysat_webhooks_idempotency (key, event_type, deliveries_json, created_at, request_hash)
              VALUES ('\(p)key-1', 'x.y', '[{"id":"\(p)d_dead","endpoint_id":"\(p)ep_a"}]', '2026-01-01T00:00:00.000000+00:00', 'abc123');
            INSERT INTO keysat_webhooks_event_types (name, declared_at) VALUES ('\(p)x.y', '2026-01-01T00:00:00.000042+00:00');
            INSERT INTO keysat_webhooks_endpoint_health (endpoint_id, last_success_at, last_failure_at, failure_streak,
                disabled_failing_since, probed_at, streak_reset_at)
              VALUES ('\(p)ep_a', '2026-01-01T00:00:01.250000+00:00', '2026-01-01T00:00:00.100000+00:00', 0,
                      NULL, NULL, '2025-12-31T00:00:00.000007+00:00'),
                     ('\(p)ep_b', NULL, '2026-01-04T00:00:02.000002+00:00', 2,
                      '2026-01-04T00:00:01.000001+00:00', '2026-01-04T00:00:03.000003+00:00', NULL);
            INSERT INTO keysat_webhooks_attempt_minutes (minute, endpoint_id, attempts, successes)
              VALUES ('2026-01-04T00:00', '\(p)ep_b', 2, 0), ('2026-01-01T00:00', '\(p)ep_a', 2, 1);
            UPDATE webhook_endpoints SET order_by = 'license.id', order_on_dead = 'hold' WHERE id = '\(p)ep_b';
            UPDATE webhook_deliveries SET keysat_webhooks_ordering_key = 'L-ü 1', keysat_webhooks_sequence = 7
              WHERE id = '\(p)d_3';
            UPDATE webhook_deliveries SET keysat_webhooks_ordering_key = 'L-ü 1', keysat_webhooks_sequence = 9
              WHERE id = '\(p)d_1';
            INSERT INTO keysat_webhooks_key_sequences (endpoint_id, ordering_key, last)
              VALUES ('\(p)ep_b', 'L-ü 1', 9), ('\(p)ep_a', 'other', 4503599627370496);
            """)
        return path
    }

    /// Every row of every copied table (and SQLite's totals), each value as typeof and hex, in
    /// the order rows were written.
    private func contents(_ path: String) throws -> String {
        let tables: [(String, String)] = [
            // PostgreSQL's endpoints have no written order (no seq): every reader orders them by
            // (created_at, id), and so does the copy.
            ("webhook_endpoints", "created_at, id"), ("webhook_deliveries", "rowid"),
            ("webhook_delivery_attempts", "id"),
            ("keysat_webhooks_idempotency", "rowid"), ("keysat_webhooks_event_types", "name"),
            ("keysat_webhooks_endpoint_health", "endpoint_id"),
            ("keysat_webhooks_attempt_minutes", "minute, endpoint_id"),
            ("keysat_webhooks_key_sequences", "endpoint_id, ordering_key"),
            ("keysat_webhooks_totals", "endpoint_id"),
        ]
        var text = ""
        for (table, order) in tables {
            let columns = try SQL.rows(path, "SELECT name FROM pragma_table_info('\(table)')").compactMap {
                $0["name"] as? String
            }
            let values = columns.map { "typeof(\($0)) || ':' || hex(\($0))" }.joined(separator: " || ' ' || ")
            text +=
                "\(table)\n" + (try SQL.value(path, "SELECT \(values) FROM \(table) ORDER BY \(order)"))
                + "\n"
        }
        return text
    }

    func testSQLiteToPostgreSQLAndBackKeepsEveryRowByteForByte() throws {
        let scratch = try Scratch()
        let uri = try freshDatabase()
        let source = try makeSource(scratch)
        let there = try copy(["--db", source, "--to", uri])
        XCTAssertEqual(there.status, 0, there.stderr)
        XCTAssertEqual(there.output, "", "silent on success")
        XCTAssertEqual(there.stderr, "")
        // Written order kept in seq (the ordered endpoint's chain is d_3, d_1, d_2), times to the microsecond.
        XCTAssertEqual(
            try psql(
                uri, "SELECT id || ' ' || keysat_rfc3339(created_at) FROM webhook_deliveries ORDER BY seq"),
            [
                "d_3 2026-01-04T00:00:00.000003+00:00", "d_1 2026-01-04T00:00:00.000003+00:00",
                "d_2 2026-01-04T00:00:00.000001+00:00", "d_dead 2026-01-01T00:00:00.000000+00:00",
                "d_done 2026-01-01T00:00:00.000000+00:00",
            ])
        XCTAssertEqual(
            try psql(
                uri,
                "SELECT secret || ' ' || previous_secret || ' ' || keysat_rfc3339(previous_secret_expires_at) FROM webhook_endpoints WHERE id = 'ep_b'"
            ),
            ["secret-b old-b 2026-02-01T00:00:00.000001+00:00"])
        XCTAssertEqual(
            try psql(uri, "SELECT md5(payload_json) FROM webhook_deliveries WHERE id = 'd_3'"),
            [try md5(of: source, "d_3")])
        // The program reads the copy: the ordered endpoint's head is the oldest written.
        let listed = try runTool(
            "keysat-webhooks", ["deliveries", "list", "--db", uri, "--endpoint", "ep_b", "--json"])
        XCTAssertEqual(listed.status, 0, listed.stderr)

        let back = scratch.file("back.db")
        let home = try copy(["--db", uri, "--to", back, "--json"])
        XCTAssertEqual(home.status, 0, home.stderr)
        XCTAssertTrue(home.output.contains("\"webhook_deliveries\":5"), home.output)
        XCTAssertEqual(try contents(back), try contents(source))
        // And the way back's way back: PostgreSQL to PostgreSQL.
        let other = try freshDatabase()
        XCTAssertEqual(try copy(["--db", uri, "--to", other]).status, 0)
        XCTAssertEqual(try psql(other, "SELECT count(*) FROM webhook_delivery_attempts"), ["4"])
        XCTAssertEqual(
            try psql(other, "SELECT nextval(pg_get_serial_sequence('webhook_delivery_attempts', 'id'))"),
            ["5"])
    }

    /// md5 of one delivery's payload bytes as SQLite stores them.
    private func md5(of path: String, _ id: String) throws -> String {
        let hex = try SQL.value(path, "SELECT hex(payload_json) FROM webhook_deliveries WHERE id = '\(id)'")
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        let result = try runTool("/usr/bin/md5sum", [], stdin: Data(bytes))
        return String(result.output.prefix(32))
    }

    func testAHostileRowIsNamedAndNothingIsWritten() throws {
        let cases: [(String, String)] = [
            (
                "UPDATE webhook_deliveries SET next_attempt_at = 'soon' WHERE id = 'd_2'",
                "rowid 3: its next_attempt_at (text 'soon') is not a time"
            ),
            (
                "UPDATE webhook_deliveries SET payload_json = X'7B7D' WHERE id = 'd_done'",
                "rowid 5: its payload_json is not text (blob"
            ),
            (
                "UPDATE webhook_deliveries SET last_error = CAST(X'FF00' AS TEXT) WHERE id = 'd_dead'",
                "rowid 4: its last_error holds a NUL byte"
            ),
            (
                "UPDATE webhook_delivery_attempts SET error = CAST(X'C328' AS TEXT) WHERE id = 2",
                "webhook_delivery_attempts rowid 2: its error is not UTF-8 text"
            ),
            ("UPDATE webhook_deliveries SET id = NULL WHERE id = 'd_dead'", "rowid 4: its id is NULL"),
            (
                "UPDATE webhook_endpoints SET created_at = '2026-01-01T00:00:00.1234567+00:00' WHERE id = 'ep_a'",
                "webhook_endpoints rowid 2: its created_at"
            ),
            (
                "UPDATE webhook_delivery_attempts SET duration_ms = 1.5 WHERE id = 3",
                "rowid 3: its duration_ms is not an integer (real"
            ),
        ]
        for (damage, expected) in cases {
            let scratch = try Scratch()
            let uri = try freshDatabase()
            let source = try makeSource(scratch)
            try SQL.execute(source, damage)
            let result = try copy(["--db", source, "--to", uri])
            XCTAssertEqual(result.status, 65, damage)
            XCTAssertTrue(result.stderr.hasPrefix("keysat-webhooks: error: cannot copy "), result.stderr)
            XCTAssertTrue(result.stderr.contains(expected), "\(damage): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
            for table in ["webhook_endpoints", "webhook_deliveries", "webhook_delivery_attempts"] {
                XCTAssertEqual(try psql(uri, "SELECT count(*) FROM \(table)"), ["0"], damage)
            }
            // Into SQLite, the same refusal and an empty target.
            let target = scratch.file("target.db")
            XCTAssertEqual(try copy(["--db", source, "--to", target]).status, 65)
            XCTAssertEqual(try SQL.value(target, "SELECT count(*) FROM webhook_endpoints"), "0")
        }
    }

    func testANonEmptyTargetIsRefusedAndCollidingIdsEvenWithIntoNonempty() throws {
        let scratch = try Scratch()
        let uri = try freshDatabase()
        let source = try makeSource(scratch)
        XCTAssertEqual(try copy(["--db", source, "--to", uri]).status, 0)
        let again = try copy(["--db", source, "--to", uri])
        XCTAssertEqual(again.status, 73)
        XCTAssertTrue(again.stderr.contains("already has 2 endpoints and 5 deliveries"), again.stderr)
        XCTAssertTrue(again.stderr.contains("--into-nonempty"), again.stderr)
        let colliding = try copy(["--db", source, "--to", uri, "--into-nonempty"])
        XCTAssertEqual(colliding.status, 65)
        XCTAssertTrue(colliding.stderr.contains("is already in"), colliding.stderr)
        XCTAssertEqual(try psql(uri, "SELECT count(*) FROM webhook_deliveries"), ["5"])
        // Another queue with other ids goes in beside it, its history numbered after the target's.
        let second = try makeSource(scratch, name: "second.db", prefix: "s")
        let added = try copy(["--db", second, "--to", uri, "--into-nonempty"])
        XCTAssertEqual(added.status, 0, added.stderr)
        XCTAssertEqual(try psql(uri, "SELECT count(*) FROM webhook_deliveries"), ["10"])
        XCTAssertEqual(
            try psql(
                uri,
                "SELECT id || ' ' || delivery_id || ' ' || history_id FROM webhook_delivery_attempts WHERE id > 4 ORDER BY id"
            ),
            ["5 sd_3 5", "6 sd_3 5", "7 sd_dead 7", "8 sd_done 8"])
        XCTAssertEqual(
            try psql(uri, "SELECT keysat_webhooks_history FROM webhook_deliveries WHERE id = 'sd_3'"), ["5"])
    }

    func testAFailureMidCopyLeavesTheTargetEmpty() throws {
        let scratch = try Scratch()
        let source = try makeSource(scratch)
        // PostgreSQL: a constraint the third table's last rows break, after two tables were written.
        let uri = try freshDatabase()
        XCTAssertEqual(try runTool("keysat-webhooks", ["init", "--db", uri]).status, 0)
        _ = try psql(
            uri, "ALTER TABLE webhook_delivery_attempts ADD CONSTRAINT injected CHECK (duration_ms < 1000)")
        let failed = try copy(["--db", source, "--to", uri])
        XCTAssertEqual(failed.status, 65, failed.stderr)
        XCTAssertTrue(failed.stderr.contains("23514"), failed.stderr)
        for table in ["webhook_endpoints", "webhook_deliveries", "webhook_delivery_attempts"] {
            XCTAssertEqual(try psql(uri, "SELECT count(*) FROM \(table)"), ["0"])
        }
        // SQLite: a trigger that takes a delivery back out; the counts read back catch it.
        let target = scratch.file("target.db")
        XCTAssertEqual(try runTool("keysat-webhooks", ["init", "--db", target]).status, 0)
        try SQL.execute(
            target,
            "CREATE TRIGGER injected AFTER INSERT ON webhook_deliveries WHEN NEW.id = 'd_2' BEGIN DELETE FROM webhook_deliveries WHERE id = NEW.id; END"
        )
        let before = try SQL.dump(target)
        let mismatch = try copy(["--db", source, "--to", target])
        XCTAssertEqual(mismatch.status, 70, mismatch.stderr)
        XCTAssertTrue(
            mismatch.stderr.contains(
                "webhook_deliveries: 5 rows in the source, 5 read, 4 more in the target"), mismatch.stderr)
        XCTAssertEqual(try SQL.dump(target), before)
    }

    func testAPasswordOnTheCommandLineIsRefusedAndLiveLeasesToo() throws {
        let scratch = try Scratch()
        let source = try makeSource(scratch)
        let refused = try copy(["--db", source, "--to", "postgresql://keysat:hunter2@127.0.0.1:1/keysat"])
        XCTAssertEqual(refused.status, 64)
        XCTAssertFalse(refused.stderr.contains("hunter2"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("--to holds a password"), refused.stderr)
        let fromDB = try copy([
            "--db", "postgresql://keysat@127.0.0.1:1/k?password=hunter2", "--to", scratch.file("x.db"),
        ])
        XCTAssertEqual(fromDB.status, 64)
        XCTAssertFalse(fromDB.stderr.contains("hunter2"), fromDB.stderr)

        let uri = try freshDatabase()
        XCTAssertEqual(try copy(["--db", source, "--to", uri]).status, 0)
        _ = try psql(
            uri,
            "UPDATE webhook_deliveries SET claim_token = gen_random_uuid(), lease_expires_at = now() + interval '1 hour', claimed_by = 'h:1:x' WHERE id = 'd_3'"
        )
        let leased = try copy(["--db", uri, "--to", scratch.file("back.db")])
        XCTAssertEqual(leased.status, 75, leased.stderr)
        XCTAssertTrue(leased.stderr.contains("1 delivery in postgresql://keysat@"), leased.stderr)
        // An expired lease (a killed run) is copied as an unclaimed pending row.
        _ = try psql(
            uri,
            "UPDATE webhook_deliveries SET lease_expires_at = now() - interval '1 second' WHERE id = 'd_3'")
        let other = try freshDatabase()
        XCTAssertEqual(try copy(["--db", uri, "--to", other]).status, 0)
        XCTAssertEqual(
            try psql(
                other,
                "SELECT count(*) FROM webhook_deliveries WHERE claim_token IS NOT NULL OR lease_expires_at IS NOT NULL"
            ), ["0"])
    }
}
