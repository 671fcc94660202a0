import Foundation
import XCTest

/// Delivery rows written by other programs (Keysat's daemon, the sqlite3 shell) whose columns
/// cannot be sent or recorded as they stand (issue 20): found by running keysat-deliver four
/// times over them and counting the requests.
final class ForeignRowTests: XCTestCase {
    /// Inserts a delivery row with the sqlite3 shell, as another program would, and returns its
    /// rowid. `id`, `count` and `next` are SQL literals.
    private func insert(
        _ db: TestDatabase, endpoint: String, id: String, count: String = "0",
        next: String = "'2000-01-01T00:00:00.000000+00:00'", created: String = "2000-01-01T00:00:00Z"
    ) throws -> String {
        try SQL.value(
            db.path,
            """
            INSERT INTO webhook_deliveries (id, endpoint_id, event_type, payload_json, attempt_count,
                next_attempt_at, created_at)
            VALUES (\(id), '\(endpoint)', 'license.issued', '{"event_type":"license.issued","data":{}}',
                \(count), \(next), '\(created)')\(onPostgreSQL ? " RETURNING seq" : "");
            \(onPostgreSQL ? "" : "SELECT last_insert_rowid();")
            """)
    }

    func testRowsThatCannotBeRecordedAreDeadLetteredNeverSent() throws {
        try requireSQLite("rows the sqlite3 shell can write into SQLite's untyped columns (NULL ids, text counts)")
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let plain = try db.addEndpoint(on: receiver, path: "/status/204/plain")
        let ordered = try db.addEndpoint(on: receiver, path: "/status/204/ordered")
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "update", ordered, "--ordered", "--db", db.path]).status, 0)

        // What the issue found, and the rest of the class: each is sent by no run.
        let defective: [(label: String, id: String, count: String, next: String)] = [
            ("null id", "NULL", "0", "'2000-01-01T00:00:00.000000+00:00'"),
            ("text count", "'d_text'", "'abc'", "'2000-01-01T00:00:00.000000+00:00'"),
            ("real count", "'d_real'", "2.5", "'2000-01-01T00:00:00.000000+00:00'"),
            ("negative count", "'d_negative'", "-3", "'2000-01-01T00:00:00.000000+00:00'"),
            ("huge count", "'d_huge'", "5000000", "'2000-01-01T00:00:00.000000+00:00'"),
            ("integer time", "'d_int_time'", "0", "12345"),
            ("text time never due", "'d_soon'", "0", "'soon'"),
            ("blob time", "'d_blob_time'", "0", "x'00ff'"),
            ("time that does not parse", "'d_bad_time'", "0", "'1999-99-99 junk'"),
            ("id with CR", "'d_cr' || char(13) || 'x'", "0", "'2000-01-01T00:00:00.000000+00:00'"),
            ("blob id", "x'6162'", "0", "'2000-01-01T00:00:00.000000+00:00'"),
            // Found by the adversarial pass: what a Swift String would cut or replace.
            ("id with NUL", "'d_nul' || char(0) || 'tail'", "0", "'2000-01-01T00:00:00.000000+00:00'"),
            ("id not UTF-8", "CAST(x'61626364ff' AS TEXT)", "0", "'2000-01-01T00:00:00.000000+00:00'"),
            ("time with NUL", "'d_time_nul'", "0", "'2000-01-01T00:00:00.000000+00:00' || char(0)"),
            ("time not UTF-8", "'d_time_utf8'", "0", "CAST(x'ff' AS TEXT)"),
            ("a Julian day", "'d_julian'", "0", "julianday('now')"),
            ("a digit", "'d_five'", "0", "'5'"),
            ("digits and letters", "'d_3abc'", "0", "'3abc'"),
        ]
        var rowids: [String: String] = [:]
        for row in defective {
            rowids[row.label] = try insert(db, endpoint: plain, id: row.id, count: row.count, next: row.next)
        }
        // An ordered endpoint whose head is a row whose time never comes: it must not block.
        let head = try insert(db, endpoint: ordered, id: "'o_head'", next: "'later'")
        let good = try XCTUnwrap(db.enqueue(["license.issued", #"{"n":1}"#]).lines.first)
        XCTAssertEqual(try db.count(where: "next_attempt_at IS NOT NULL"), defective.count + 1 + 2)

        var warnings: [String] = []
        for _ in 0..<4 {
            let run = try db.deliver()
            XCTAssertEqual(run.status, 0, run.stderr)
            warnings.append(run.stderr)
        }
        // The good deliveries went once each (one per endpoint); nothing else ever went.
        let requests = try receiver.requests()
        XCTAssertEqual(requests.count, 2, requests.map(\.path).description)
        XCTAssertEqual(Set(requests.map(\.deliveryID)).count, 2)
        XCTAssertTrue(requests.allSatisfy { !$0.deliveryID.isEmpty && $0.headers["webhook-id"] != nil })
        XCTAssertTrue(requests.contains { $0.path == "/status/204/ordered" }, "the ordered endpoint moved on")

        // Every defective row is dead, with a reason; warned about in the first run only, by rowid.
        for (label, rowid) in rowids.merging(["ordered head": head], uniquingKeysWith: { a, _ in a }) {
            let row = try XCTUnwrap(
                SQL.rows(db.path, "SELECT next_attempt_at, attempt_count, last_error FROM webhook_deliveries WHERE rowid = \(rowid)").first,
                label)
            XCTAssertTrue(row["next_attempt_at"] is NSNull, "\(label): \(row)")
            XCTAssertTrue((row["last_error"] as? String ?? "").hasPrefix("not sent: "), "\(label): \(row)")
            XCTAssertTrue(warnings[0].contains("rowid=\(rowid) "), "\(label) is named: \(warnings[0])")
        }
        XCTAssertEqual(warnings[1...].joined(), "", "later runs have nothing to say")
        XCTAssertFalse(warnings[0].contains("\r"), "an id's control bytes are not written raw")
        // stats counts them as dead; the good one is delivered.
        XCTAssertEqual(
            try db.count(where: "delivered_at IS NULL AND next_attempt_at IS NULL AND attempt_count > 0"),
            defective.count + 1)
        XCTAssertTrue(try db.row(String(good.split(separator: " ").first ?? ""))["delivered_at"] is String)

        // A row repaired meanwhile is left alone: dead-lettering matches the values as read.
        let repaired = try insert(db, endpoint: plain, id: "NULL")
        try SQL.execute(db.path, "UPDATE webhook_deliveries SET id = 'repaired' WHERE rowid = \(repaired)")
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertTrue(try db.row("repaired")["delivered_at"] is String, "a repaired row is sent")

        // purge deletes every dead row whatever its id, as many as its dry run said, once.
        let dry = try runTool(
            "keysat-webhooks", ["purge", "--older-than", "1d", "--status", "dead", "--json", "--dry-run", "--db", db.path])
        let purge = try runTool(
            "keysat-webhooks", ["purge", "--older-than", "1d", "--status", "dead", "--json", "--db", db.path])
        XCTAssertEqual(purge.status, 0, purge.stderr)
        let said = try XCTUnwrap(JSONSerialization.jsonObject(with: purge.stdout) as? [String: Any])
        let would = try XCTUnwrap(JSONSerialization.jsonObject(with: dry.stdout) as? [String: Any])
        XCTAssertEqual(said["deliveries"] as? Int, defective.count + 1, purge.output)
        XCTAssertEqual(would["deliveries"] as? Int, said["deliveries"] as? Int)
        XCTAssertEqual(try db.count(where: "delivered_at IS NULL AND next_attempt_at IS NULL"), 0)
        let again = try runTool(
            "keysat-webhooks", ["purge", "--older-than", "1d", "--status", "dead", "--json", "--db", db.path])
        let counts = try XCTUnwrap(JSONSerialization.jsonObject(with: again.stdout) as? [String: Any])
        XCTAssertEqual(counts["deliveries"] as? Int, 0, again.output)
    }

    /// An ordered endpoint sends in the order events were enqueued, whatever `created_at` says
    /// (a wall clock stepped back gives a later event an earlier time).
    func testOrderedEndpointKeepsEnqueueOrderWhenTheClockStepsBack() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let ordered = try db.addEndpoint(on: receiver, path: "/status/204/ordered")
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "update", ordered, "--ordered", "--db", db.path]).status, 0)
        XCTAssertEqual(try db.enqueue(["license.issued", #"{"license_id":"L1"}"#]).status, 0)
        XCTAssertEqual(try db.enqueue(["license.revoked", #"{"license_id":"L1"}"#]).status, 0)
        // The revocation was enqueued after a 10-minute step back of the clock.
        try SQL.execute(
            db.path,
            """
            UPDATE webhook_deliveries SET created_at = \(SQL.timeAgo(db.path, "10 minutes"))
            WHERE event_type = 'license.revoked'
            """)
        for _ in 0..<2 { XCTAssertEqual(try db.deliver().status, 0) }
        let events = try receiver.requests().map { $0.headers["x-keysat-event"] ?? "" }
        XCTAssertEqual(events, ["license.issued", "license.revoked"])
    }

    /// An endpoint whose `active` is neither 0 nor 1 (another program wrote it) is one thing
    /// everywhere: not enqueued for, not sent to (it was sent to but never enqueued for).
    func testAnEndpointActiveOtherThanZeroOrOneIsInactiveEverywhere() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        // Text in an integer column only SQLite takes.
        let values = onPostgreSQL ? ["2", "-1"] : ["2", "-1", "'yes'"]
        for value in values {
            let id = try db.addEndpoint(on: receiver, path: "/status/204/\(value)")
            try SQL.execute(db.path, "UPDATE webhook_endpoints SET active = \(value) WHERE id = '\(id)'")
            _ = try insert(db, endpoint: id, id: "'old_\(id)'")
        }
        let enqueued = try db.enqueue(["license.issued", "{}"])
        XCTAssertEqual(enqueued.status, 0, enqueued.stderr)
        XCTAssertEqual(try db.count(), values.count, "no delivery enqueued for them")
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try receiver.requests().count, 0, "nothing sent to them")
        XCTAssertEqual(try db.count(where: "last_error = 'endpoint deleted or disabled'"), values.count)
        let list = try runTool("keysat-webhooks", ["endpoint", "list", "--json", "--db", db.path])
        let endpoints = try XCTUnwrap(JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]])
        XCTAssertEqual(endpoints.count, values.count)
        XCTAssertEqual(endpoints.filter { $0["active"] as? Bool == false }.count, values.count, list.output)
    }

    /// Listing and re-queueing read no payload they do not print (issue 20: 213 MB of memory for
    /// a listing of 40 rows of 5 MB).
    func testListingAndRetryReadNoPayload() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint()
        try SQL.execute(
            db.path,
            """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
            INSERT INTO webhook_deliveries (id, endpoint_id, event_type, payload_json, attempt_count,
                next_attempt_at, last_error, created_at)
            SELECT 'big' || i, '\(endpoint)', 'license.issued', '"' || \(SQL.repeated(db.path, "x", 5_000_000)) || '"',
                1, NULL, 'failed', '2026-01-01T00:00:00.000000+00:00' FROM n
            """)
        func peakKiB(_ arguments: [String]) throws -> Int {
            let script = """
                import resource, subprocess, sys
                r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
                print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
                """
            let result = try runTool(
                "/usr/bin/env", ["python3", "-c", script, Binaries.path("keysat-webhooks")] + arguments + ["--db", db.path])
            let words = result.output.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            XCTAssertEqual(words.first, 0, "\(arguments): \(result.output) \(result.stderr)")
            return words.last ?? 0
        }
        XCTAssertLessThan(try peakKiB(["deliveries", "list", "--limit", "40"]), 60_000)
        XCTAssertLessThan(try peakKiB(["deliveries", "list", "--status", "dead", "--limit", "40"]), 60_000)
        XCTAssertLessThan(try peakKiB(["deliveries", "retry"] + (1...40).map { "big\($0)" }), 60_000)
        XCTAssertEqual(try db.count(where: "next_attempt_at IS NOT NULL"), 40, "re-queued")
    }

    /// A time with a NUL byte at the end of a page: the next page starts after it, not at it
    /// (it was paged, and sent, twice in one run).
    func testATimeWithANulAtAPageBoundaryIsReadOnce() throws {
        try requireSQLite("a time with a NUL byte, which only SQLite text can hold")
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint(on: receiver, path: "/status/204/page")
        let time = "'2026-01-01T00:00:00.000000+00:00'"
        try SQL.execute(
            db.path,
            """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 255)
            INSERT INTO webhook_deliveries (id, endpoint_id, event_type, payload_json, next_attempt_at, created_at)
            SELECT 'a' || i, '\(endpoint)', 'license.issued', '{}', \(time), '2026-01-01T00:00:00Z' FROM n;
            INSERT INTO webhook_deliveries (id, endpoint_id, event_type, payload_json, next_attempt_at, created_at)
            VALUES ('nul', '\(endpoint)', 'license.issued', '{}', \(time) || char(0), '2026-01-01T00:00:00Z');
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
            INSERT INTO webhook_deliveries (id, endpoint_id, event_type, payload_json, next_attempt_at, created_at)
            SELECT 'b' || i, '\(endpoint)', 'license.issued', '{}', '2026-01-02T00:00:00.000000+00:00',
                '2026-01-01T00:00:00Z' FROM n;
            """)
        let run = try db.deliver(["--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let requests = try receiver.requests()
        XCTAssertEqual(requests.count, 355, "every valid row once, the NUL one never")
        XCTAssertEqual(Set(requests.map(\.deliveryID)).count, 355)
        XCTAssertEqual(try db.count(where: "delivered_at IS NOT NULL"), 355)
        XCTAssertEqual(try db.count(where: "id = 'nul' AND next_attempt_at IS NULL"), 1)
        XCTAssertEqual(run.stderr.components(separatedBy: "rowid=").count - 1, 1, "warned once")
    }

    /// purge of many dead rows whose ids are blobs, or text with a NUL, ends and deletes them
    /// all (it looped for ever on 1,500 blob ids).
    func testPurgeOfManyStrangeIdsEnds() throws {
        try requireSQLite("blob ids and ids with a NUL byte, which only SQLite can hold")
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint()
        try SQL.execute(
            db.path,
            """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)
            INSERT INTO webhook_deliveries (id, endpoint_id, event_type, payload_json, attempt_count, created_at)
            SELECT CASE i % 3 WHEN 0 THEN CAST('b' || i AS BLOB) WHEN 1 THEN 'n' || i || char(0) || 'x'
                ELSE CAST(x'ff' || CAST(i AS BLOB) AS TEXT) END,
                '\(endpoint)', 'license.issued', '{}', 1, '2026-01-01T00:00:00.000000+00:00' FROM n
            """)
        let started = Date()
        let purge = try runTool(
            "keysat-webhooks", ["purge", "--older-than", "1d", "--json", "--db", db.path])
        XCTAssertEqual(purge.status, 0, purge.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 20)
        XCTAssertEqual(try db.count(), 0)
    }
}
