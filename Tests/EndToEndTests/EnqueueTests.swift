import Foundation
import KeysatTestSupport
import XCTest

final class EnqueueTests: XCTestCase {
    // MARK: - Fan-out and envelope

    func testFansOutToExactlyTheSubscribedActiveEndpoints() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let all = try db.addEndpoint(events: [])
        let issued = try db.addEndpoint(events: ["license.issued", "machine.activated"])
        _ = try db.addEndpoint(events: ["license.revoked"])
        let disabled = try db.addEndpoint(events: ["*"])
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "disable", disabled, "--db", db.path]).status, 0)

        let result = try db.enqueue(["license.issued", #"{"license_id":"lic-1"}"#])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stderr, "")
        let rows = try SQL.rows(
            db.path,
            "SELECT id, endpoint_id, attempt_count, next_attempt_at, created_at, delivered_at FROM webhook_deliveries"
        )
        XCTAssertEqual(Set(rows.map { $0["endpoint_id"] as? String }), [all, issued])
        XCTAssertEqual(Set(result.lines), Set(rows.compactMap { $0["id"] as? String }))
        for row in rows {
            XCTAssertEqual(row["attempt_count"] as? Int, 0)
            XCTAssertEqual(row["next_attempt_at"] as? String, row["created_at"] as? String)
            XCTAssertTrue(row["delivered_at"] is NSNull)
        }
    }

    func testNoSubscriberIsSuccessWithNoOutput() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(events: ["license.revoked"])
        let result = try db.enqueue(["invoice.settled", "{}"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.output, "")
        XCTAssertEqual(try db.count(), 0)
    }

    func testEnvelopeEmbedsDataByteForByte() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()
        let data =
            #"{"big": 12345678901234567890, "price": 1.10, "z": 1, "a": [1e400, -0.0], "name": "Zoë 😀 \u00e9", "esc": "\"\\\/\b\f\n\r\t\u0000"}"#
        // Through the argument, standard input (with surrounding white space) and a data file.
        let file = try scratch.write("data.json", "\n\t" + data + "  \r\n")
        let runs = [
            try db.enqueue(["license.issued", data]),
            try db.enqueue(["license.issued"], stdin: Data((" \n" + data + "\n\n").utf8)),
            try db.enqueue(["license.issued", "-"], stdin: Data(data.utf8)),
            try db.enqueue(["--data-file", file, "license.issued"]),
        ]
        for result in runs {
            XCTAssertEqual(result.status, 0, result.stderr)
            let id = try XCTUnwrap(result.lines.first)
            let row = try XCTUnwrap(
                SQL.rows(
                    db.path,
                    "SELECT payload_json, \(SQL.programTime(db.path, "created_at")) AS created_at FROM webhook_deliveries WHERE id = '\(id)'"
                ).first)
            let created = try XCTUnwrap(row["created_at"] as? String)
            let expected =
                #"{"event_type":"license.issued","timestamp":""# + created + #"","data":"# + data + "}"
            XCTAssertEqual(row["payload_json"] as? String, expected)
            // Fixed-width RFC 3339 UTC with microseconds.
            XCTAssertNotNil(
                created.range(
                    of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$"#, options: .regularExpression),
                created)
        }
    }

    func testJSONOutput() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint()
        let result = try db.enqueue(["--json", "machine.activated", "[true]"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        XCTAssertEqual(object["event_type"] as? String, "machine.activated")
        let deliveries = try XCTUnwrap(object["deliveries"] as? [[String: String]])
        XCTAssertEqual(deliveries.count, 1)
        XCTAssertEqual(deliveries.first?["endpoint_id"], endpoint)
        XCTAssertEqual(try db.count(where: "id = '\(deliveries[0]["id"]!)'"), 1)
    }

    func testDatabaseFromEnvironment() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()
        let result = try runTool("keysat-enqueue", ["e", "1"], environment: ["KEYSAT_DB": db.path])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try db.count(), 1)
    }

    // MARK: - All or nothing

    func testFailureMidwayWritesNothing() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()
        let second = try db.addEndpoint()
        try db.addEndpoint()
        // The second endpoint's insert fails after the first one's succeeded.
        try SQL.failInserts(db.path, endpoint: second)
        let before = try SQL.dump(db.path)
        let result = try db.enqueue(["license.issued", "{}"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.hasPrefix("keysat-enqueue: error: "), result.stderr)
        XCTAssertEqual(result.output, "")
        XCTAssertEqual(try SQL.dump(db.path), before)
        XCTAssertEqual(try db.count(), 0)
    }

    // MARK: - Idempotency

    func testIdempotencyKeyReplaysTheFirstResult() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()
        try db.addEndpoint()
        let first = try db.enqueue(["--idempotency-key", "order-42", "invoice.settled", #"{"n":1}"#])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(first.lines.count, 2)
        let before = try SQL.dump(db.path)
        let again = try db.enqueue(["--idempotency-key", "order-42", "invoice.settled", #"{"n":1}"#])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(Set(again.lines), Set(first.lines))
        XCTAssertEqual(try SQL.dump(db.path), before)
        // Another key writes again.
        XCTAssertEqual(
            try db.enqueue(["--idempotency-key", "order-43", "invoice.settled", "1"]).lines.count, 2)
        XCTAssertEqual(try db.count(), 4)
    }

    /// Issue 20: `--idempotency-key lic_L1 license.revoked` after the same key with
    /// `license.issued` printed the issued event's ids, exit 0: the revocation was lost and the
    /// caller told it succeeded. A key reused for another event type, or the same type with
    /// other data, is refused (65) naming the event it was used for, and nothing is written.
    func testIdempotencyKeyReusedForAnotherEventIsRefused() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()
        let issued = try db.enqueue(["--idempotency-key", "lic_L1", "license.issued", #"{"license":"L1"}"#])
        XCTAssertEqual(issued.status, 0, issued.stderr)
        XCTAssertEqual(issued.lines.count, 1)
        let before = try SQL.dump(db.path)

        let same = try db.enqueue(["--idempotency-key", "lic_L1", "license.issued", #"{"license":"L1"}"#])
        XCTAssertEqual(same.status, 0, same.stderr)
        XCTAssertEqual(same.lines, issued.lines)

        let revoked = try db.enqueue(["--idempotency-key", "lic_L1", "license.revoked", #"{"license":"L1"}"#])
        XCTAssertEqual(revoked.status, 65, revoked.stderr)
        XCTAssertEqual(revoked.output, "")
        XCTAssertTrue(revoked.stderr.hasPrefix("keysat-enqueue: error: "), revoked.stderr)
        XCTAssertTrue(revoked.stderr.contains("license.issued"), revoked.stderr)
        XCTAssertEqual(revoked.stderr.split(separator: "\n").count, 1, revoked.stderr)

        let otherData = try db.enqueue([
            "--idempotency-key", "lic_L1", "license.issued", #"{"license":"L2"}"#,
        ])
        XCTAssertEqual(otherData.status, 65, otherData.stderr)
        XCTAssertTrue(otherData.stderr.contains("license.issued event with other data"), otherData.stderr)

        XCTAssertEqual(try SQL.dump(db.path), before, "a refused key wrote something")
        XCTAssertEqual(try db.count("keysat_webhooks_idempotency"), 1)
        let hash = try SQL.value(db.path, "SELECT request_hash FROM keysat_webhooks_idempotency")
        // SHA-256 of type, NUL, data, by Python's hashlib.
        let expected = try runTool(
            "/usr/bin/env",
            [
                "python3", "-c",
                "import hashlib; print(hashlib.sha256(b'license.issued\\0{\"license\":\"L1\"}').hexdigest())",
            ])
        XCTAssertEqual(hash, expected.output.trimmingCharacters(in: .newlines))
    }

    /// A key written before schema step 13 has no fingerprint: it is compared by event type.
    func testIdempotencyKeyFromBeforeTheFingerprintComparesTheEventType() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()
        let first = try db.enqueue(["--idempotency-key", "old", "license.issued", "1"])
        XCTAssertEqual(first.status, 0, first.stderr)
        try SQL.execute(db.path, "UPDATE keysat_webhooks_idempotency SET request_hash = NULL")
        let again = try db.enqueue(["--idempotency-key", "old", "license.issued", "2"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(again.lines, first.lines)
        let other = try db.enqueue(["--idempotency-key", "old", "license.revoked", "1"])
        XCTAssertEqual(other.status, 65, other.stderr)
        XCTAssertTrue(other.stderr.contains("license.issued"), other.stderr)
        XCTAssertEqual(try db.count(), 1)
    }

    func testIdempotencyKeyThatReachedNoEndpointStaysUsed() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let first = try db.enqueue(["--idempotency-key", "k", "license.issued", "1"])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(first.output, "")
        try db.addEndpoint()
        let again = try db.enqueue(["--idempotency-key", "k", "license.issued", "1"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(again.output, "")
        XCTAssertEqual(try db.count(), 0)
    }

    func testRacingRetriesWithOneKeyWriteOneSet() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()
        try db.addEndpoint()
        let script = """
            for i in 1 2 3 4 5 6 7 8; do
              "$1" --db "$2" --idempotency-key race license.issued '{"x":1}' > "$3/out.$i" 2>&1 &
            done
            wait
            """
        let result = try runTool(
            "/bin/sh", ["-c", script, "sh", Binaries.path("keysat-enqueue"), db.path, scratch.path])
        XCTAssertEqual(result.status, 0)
        XCTAssertEqual(try db.count(), 2)
        let expected = Set(
            try SQL.rows(db.path, "SELECT id FROM webhook_deliveries").compactMap { $0["id"] as? String })
        for i in 1...8 {
            let output = try String(contentsOfFile: scratch.file("out.\(i)"), encoding: .utf8)
            XCTAssertEqual(
                Set(output.split(separator: "\n").map(String.init)), expected, "process \(i): \(output)")
        }
    }

    // MARK: - Bad input changes nothing

    func testBadInputGivesItsCodeAndChangesNothing() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()
        let large = try scratch.write("large.json", "[" + String(repeating: "1,", count: 600_000) + "1]")
        let unreadable = scratch.file("missing.json")
        let cases: [(arguments: [String], stdin: String?, status: Int32, mentions: String)] = [
            (["license.issued", #"{"a":}"#], nil, 65, "byte 5"),
            (["license.issued", "[1,2"], nil, 65, "byte 4"),
            (["license.issued", "01"], nil, 65, "byte 1"),
            (["license.issued", "{\"a\":1} x"], nil, 65, "byte 8"),
            (["license.issued", "\"\u{01}\""], nil, 65, "control character"),
            (["license.issued", ""], nil, 65, "empty"),
            (["license.issued"], "", 65, "empty"),
            (["license.issued"], "\u{FEFF}{}", 65, "byte 0"),
            (["", "{}"], nil, 65, "event type is empty"),
            ([String(repeating: "a", count: 129), "{}"], nil, 65, "longer than 128"),
            (["license issued", "{}"], nil, 65, "character outside"),
            (["license/issued", "{}"], nil, 65, "character outside"),
            (["--max-payload-bytes", "10", "e", "[1,2,3,4,5,6]"], nil, 65, "larger than 10 bytes"),
            (["--data-file", large, "e"], nil, 65, "larger than 1048576 bytes"),
            (["--data-file", unreadable, "e"], nil, 66, "missing.json"),
            (["--data-file", large, "e", "{}"], nil, 64, "not both"),
            ([], nil, 64, "missing EVENT_TYPE"),
            (["--frobnicate", "e", "{}"], nil, 64, "unknown option"),
            (["e", "1", "2"], nil, 64, "too many arguments"),
            (["--max-payload-bytes", "lots", "e", "1"], nil, 64, "--max-payload-bytes"),
            (["--idempotency-key", "", "e", "1"], nil, 65, "idempotency key"),
        ]
        let before = try SQL.dump(db.path)
        for item in cases {
            let result = try db.enqueue(item.arguments, stdin: item.stdin.map { Data($0.utf8) })
            XCTAssertEqual(result.status, item.status, "\(item.arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.hasPrefix("keysat-enqueue: error: "), result.stderr)
            XCTAssertTrue(result.stderr.contains(item.mentions), "\(item.arguments): \(result.stderr)")
            XCTAssertEqual(result.output, "")
        }
        XCTAssertEqual(try SQL.dump(db.path), before)
    }

    func testMissingDatabaseSuggestsInit() throws {
        let scratch = try Scratch()
        let path = try scratch.absentDatabase()
        let result = try runTool("keysat-enqueue", ["--db", path, "e", "{}"])
        assertMissingDatabaseAdvice(result)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        guard onPostgreSQL else { return }
        // The password, where KEYSAT_DB may hold one, is never shown (the cluster's own, so
        // that the server gets as far as looking for the database).
        let passfile = try String(contentsOfFile: PostgresTestCluster.shared().directory + "/pgpass", encoding: .utf8)
        let secret = try XCTUnwrap(passfile.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines))
        let withPassword = path.replacingOccurrences(of: "postgresql://keysat@", with: "postgresql://keysat:\(secret)@")
        XCTAssertNotEqual(withPassword, path)
        let keyed = try runTool("keysat-enqueue", ["e", "{}"], environment: ["KEYSAT_DB": withPassword])
        XCTAssertFalse(keyed.stderr.contains(secret), keyed.stderr)
        XCTAssertEqual(keyed.status, 66, keyed.stderr)
    }

    func testBusyDatabaseIsTemporaryFailure() throws {
        try requireSQLite("SQLite's write lock held by another connection, and --busy-timeout")
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()
        // Another process holds the write lock for two seconds.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        holder.arguments = [
            "-c",
            """
            import sqlite3, sys, time
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            c.execute('BEGIN EXCLUSIVE')
            print('locked', flush=True)
            time.sleep(2)
            c.execute('ROLLBACK')
            """, db.path,
        ]
        let pipe = Pipe()
        holder.standardOutput = pipe
        try holder.run()
        _ = pipe.fileHandleForReading.availableData  // "locked"
        let before = try SQL.rows(db.path, "SELECT count(*) AS n FROM webhook_deliveries")
        let result = try db.enqueue(["--busy-timeout", "200", "license.issued", "{}"])
        holder.waitUntilExit()
        XCTAssertEqual(result.status, 75, result.stderr)
        XCTAssertTrue(result.stderr.contains("busy"), result.stderr)
        XCTAssertEqual(
            try SQL.rows(db.path, "SELECT count(*) AS n FROM webhook_deliveries").first?["n"] as? Int,
            before.first?["n"] as? Int)
    }

    // MARK: - Keysat's own database

    func testRunsOnADatabaseMadeByKeysat() throws {
        try requireSQLite("Keysat's own SQLite tables adopted as they are")
        let scratch = try Scratch()
        let path = scratch.file("keysat.db")
        try makeKeysatDatabase(at: path)
        // Keysat's rows, read through Keysat's own columns only.
        let keysatRows = """
            SELECT * FROM licenses; SELECT * FROM _sqlx_migrations;
            SELECT id, url, secret, event_types, active, description, created_at, updated_at FROM webhook_endpoints;
            SELECT id, endpoint_id, event_type, payload_json, attempt_count, next_attempt_at, last_status_code,
                   last_error, delivered_at, created_at FROM webhook_deliveries WHERE id = 'd1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6';
            """
        let keysatBefore = try SQL.value(path, keysatRows)

        let result = try runTool(
            "keysat-enqueue", ["--db", path, "license.issued", #"{"license_id":"lic-2"}"#])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.lines.count, 2)
        let revoked = try runTool("keysat-enqueue", ["--db", path, "license.suspended", "{}"])
        XCTAssertEqual(revoked.lines.count, 1)  // only the "*" endpoint
        XCTAssertEqual(try SQL.value(path, keysatRows), keysatBefore, "Keysat's rows are untouched")
        // Keysat's own inserts, which know nothing of this project's additions, still work.
        try SQL.execute(
            path,
            """
            INSERT INTO webhook_deliveries (id, endpoint_id, event_type, payload_json, next_attempt_at, created_at)
            VALUES ('k-1', '8f14e45f-ceea-4e7a-9c5e-1a2b3c4d5e6f', 'license.issued', '{}', '2026-03-07T00:00:00Z', '2026-03-07T00:00:00Z');
            INSERT INTO webhook_endpoints (id, url, secret, created_at, updated_at) VALUES ('e-3', 'https://x.example', 's', 'now', 'now');
            """)
        XCTAssertEqual(try SQL.value(path, "PRAGMA integrity_check"), "ok")
        XCTAssertEqual(try SQL.value(path, "PRAGMA foreign_key_check"), "")
        let list = try runTool("keysat-webhooks", ["endpoint", "list", "--db", path])
        XCTAssertEqual(list.status, 0, list.stderr)
        XCTAssertTrue(list.output.contains("https://hooks.example.com/keysat"))
        XCTAssertTrue(list.output.contains("license.issued,license.revoked"))
    }

    // MARK: - Concurrency

    func testEightProcessesEnqueueingAtOnceLoseNothing() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()
        let script = """
            for p in 1 2 3 4 5 6 7 8; do
              ( i=0; while [ $i -lt 500 ]; do i=$((i+1))
                  "$1" --db "$2" license.issued "{\\"p\\":$p,\\"i\\":$i}" >/dev/null || echo "fail $p $i"
                done ) &
            done
            wait
            """
        let result = try runTool("/bin/sh", ["-c", script, "sh", Binaries.path("keysat-enqueue"), db.path])
        XCTAssertEqual(result.status, 0)
        XCTAssertEqual(
            result.output, "", "failures: \(result.output.prefix(500)) \(result.stderr.prefix(500))")
        XCTAssertEqual(try db.count(), 4000)
        XCTAssertEqual(
            try SQL.value(
                db.path,
                """
                SELECT count(DISTINCT \(SQL.jsonField(db.path, "payload_json", "data.p")) || '-'
                    || \(SQL.jsonField(db.path, "payload_json", "data.i"))) FROM webhook_deliveries
                """
            ), "4000")
    }
}
