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
                \(count), \(next), '\(created)');
            SELECT last_insert_rowid();
            """)
    }

    func testRowsThatCannotBeRecordedAreDeadLetteredNeverSent() throws {
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

        // purge deletes the dead row with a NULL id, and says so once.
        let purge = try runTool(
            "keysat-webhooks", ["purge", "--older-than", "1d", "--status", "dead", "--json", "--db", db.path])
        XCTAssertEqual(purge.status, 0, purge.stderr)
        XCTAssertEqual(try db.count(where: "id IS NULL"), 0)
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
            UPDATE webhook_deliveries SET created_at = strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now', '-10 minutes')
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
        for value in ["2", "-1", "'yes'"] {
            let id = try db.addEndpoint(on: receiver, path: "/status/204/\(value)")
            try SQL.execute(db.path, "UPDATE webhook_endpoints SET active = \(value) WHERE id = '\(id)'")
            _ = try insert(db, endpoint: id, id: "'old_\(id)'")
        }
        let enqueued = try db.enqueue(["license.issued", "{}"])
        XCTAssertEqual(enqueued.status, 0, enqueued.stderr)
        XCTAssertEqual(try db.count(), 3, "no delivery enqueued for them")
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try receiver.requests().count, 0, "nothing sent to them")
        XCTAssertEqual(try db.count(where: "last_error = 'endpoint deleted or disabled'"), 3)
        let list = try runTool("keysat-webhooks", ["endpoint", "list", "--json", "--db", db.path])
        let endpoints = try XCTUnwrap(JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]])
        XCTAssertEqual(endpoints.count, 3)
        XCTAssertEqual(endpoints.filter { $0["active"] as? Bool == false }.count, 3, list.output)
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
            SELECT 'big' || i, '\(endpoint)', 'license.issued', '"' || printf('%.*c', 5000000, 'x') || '"',
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
}
