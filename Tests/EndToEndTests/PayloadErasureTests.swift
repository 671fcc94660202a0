import Foundation
import XCTest

/// Payload retention and erasure (issue 23): `deliveries erase --where` and
/// `purge --payloads-older-than` replace payloads with `{"erased":true,"erased_at":…}` and keep
/// the rows; on SQLite the erased bytes are found nowhere in the database file or its WAL.
final class PayloadErasureTests: XCTestCase {
    private func webhooks(_ db: TestDatabase, _ arguments: [String]) throws -> ProcessResult {
        try runTool("keysat-webhooks", arguments + ["--db", db.path])
    }

    private func object(_ result: ProcessResult) throws -> [String: Any] {
        XCTAssertEqual(result.status, 0, result.stderr)
        return try XCTUnwrap(
            JSONSerialization.jsonObject(with: result.stdout) as? [String: Any], result.output)
    }

    private static let erased = "payload_json LIKE '{\"erased\":true,\"erased_at\":\"%'"

    func testEraseWhereCountsPendingNeverSentRetryRefusedBytesGone() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/200", events: ["*"])
        // SQLite: another program keeps the database open (as Keysat does), so no tool's close
        // is the last one and checkpoints for it: the erasure's own checkpoint must.
        let holder = onPostgreSQL ? nil : try db.holdOpen()
        defer {
            holder?.terminate()
            holder?.waitUntilExit()
        }
        // Alice's address, in a payload large enough for overflow pages too.
        let alice = "alice-7f3e9b@example.com"
        let padding = String(repeating: "alice-7f3e9b-note ", count: 400)
        for index in 0..<3 {
            let data =
                #"{"n":\#(index),"customer":{"email":"\#(alice)"},"note":"\#(index == 0 ? padding : "")"}"#
            XCTAssertEqual(try db.enqueue(["license.issued", data]).status, 0)
        }
        XCTAssertEqual(
            try db.enqueue(["license.issued", #"{"customer":{"email":"bob-4c1d@example.com"}}"#]).status, 0)
        // A number and a nested field that only look alike are not matched.
        XCTAssertEqual(
            try db.enqueue(["license.issued", #"{"customer":{"email":42},"email":"carol@example.com"}"#])
                .status, 0)
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try receiver.requests().count, 5)
        // One more of Alice's, still pending: erased, it is dead-lettered and never sent.
        XCTAssertEqual(
            try db.enqueue(["machine.activated", #"{"customer":{"email":"\#(alice)"}}"#]).status, 0)
        let pending = try SQL.value(
            db.path, "SELECT id FROM webhook_deliveries WHERE event_type = 'machine.activated'")

        let before = try SQL.dump(db.path)
        let dry = try object(
            webhooks(
                db, ["deliveries", "erase", "--where", "data.customer.email=\(alice)", "--dry-run", "--json"])
        )
        XCTAssertEqual(dry["erased"] as? Int, 4)
        XCTAssertEqual(dry["pending"] as? Int, 1)
        XCTAssertEqual(dry["dry_run"] as? Bool, true)
        XCTAssertEqual(try SQL.dump(db.path), before, "--dry-run changed the database")

        let real = try object(
            webhooks(db, ["deliveries", "erase", "--where", "data.customer.email=\(alice)", "--json"]))
        XCTAssertEqual(real["erased"] as? Int, 4, "the dry run and the erasure agree")
        XCTAssertEqual(real["pending"] as? Int, 1)
        XCTAssertEqual(try db.count(where: Self.erased), 4, "counted by the engine's own tool")
        XCTAssertEqual(try db.count(), 6, "rows kept")
        XCTAssertEqual(try db.count("webhook_delivery_attempts"), 5, "attempt history kept")
        XCTAssertEqual(
            try db.count(
                where:
                    "id = '\(pending)' AND next_attempt_at IS NULL AND delivered_at IS NULL AND last_error = 'erased'"
            ), 1)
        // The marker is valid JSON, for the engine's own tool too.
        XCTAssertEqual(
            try SQL.value(
                db.path,
                "SELECT \(SQL.jsonField(db.path, "payload_json", "erased")) FROM webhook_deliveries WHERE id = '\(pending)'"
            ),
            onPostgreSQL ? "true" : "1")

        // The pending one is never sent.
        try db.makeAllDue()
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try receiver.requests().count, 5)

        // Shown as erased; a retry is refused and changes nothing; a replay of the range skips it.
        let show = try webhooks(db, ["deliveries", "show", pending])
        XCTAssertEqual(show.status, 0, show.stderr)
        XCTAssertTrue(show.output.contains("payload: erased at "), show.output)
        XCTAssertTrue(show.output.contains("status:") && show.output.contains("dead"), show.output)
        let shown = try object(webhooks(db, ["deliveries", "show", pending, "--json"]))
        XCTAssertEqual(shown["erased"] as? Bool, true)
        XCTAssertEqual((shown["payload"] as? [String: Any])?["erased"] as? Bool, true)
        XCTAssertEqual(shown["last_error"] as? String, "erased")
        let unchanged = try SQL.dump(db.path)
        let retry = try webhooks(db, ["deliveries", "retry", pending])
        XCTAssertEqual(retry.status, 65, retry.stderr)
        XCTAssertTrue(
            retry.stderr.hasPrefix("keysat-webhooks: error: the payload of delivery \(pending) was erased"),
            retry.stderr)
        XCTAssertEqual(try SQL.dump(db.path), unchanged)
        let replay = try webhooks(db, ["deliveries", "retry", "--status", "dead", "--json"])
        XCTAssertEqual(try object(replay)["requeued"] as? Int, 0)
        XCTAssertTrue(
            replay.stderr.contains("warning: 1 delivery of this range was left out: its payload was erased"),
            replay.stderr)

        // Erasing again finds nothing; bad selections are 64 and change nothing.
        XCTAssertEqual(
            try object(
                webhooks(db, ["deliveries", "erase", "--where", "data.customer.email=\(alice)", "--json"]))[
                    "erased"] as? Int, 0)
        for condition in [
            "customer.email=x", "data.customer.email", "data..email=x", "data.e'mail=x", "data.email=",
        ] {
            let result = try webhooks(db, ["deliveries", "erase", "--where", condition])
            XCTAssertEqual(result.status, 64, "\(condition): \(result.stderr)")
            XCTAssertTrue(result.stderr.hasPrefix("keysat-webhooks: error: "), result.stderr)
        }
        XCTAssertEqual(try SQL.dump(db.path), unchanged)

        guard !onPostgreSQL else { return }
        // SQLite: Alice's bytes are nowhere in the file or its WAL; Bob's still are (the search works).
        var files = Data()
        for suffix in ["", "-wal"] {
            if let bytes = FileManager.default.contents(atPath: db.path + suffix) { files.append(bytes) }
        }
        XCTAssertNil(files.range(of: Data(alice.utf8)), "erased bytes left in the database or its WAL")
        XCTAssertNil(files.range(of: Data("alice-7f3e9b-note".utf8)), "erased overflow pages left")
        XCTAssertNotNil(files.range(of: Data("bob-4c1d@example.com".utf8)))
        XCTAssertEqual(try SQL.integrityCheck(db.path), "ok")
    }

    func testPurgePayloadsOlderThanKeepsRowsHistoryAndStats() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/200", events: ["*"])
        let failing = try db.addEndpoint(on: receiver, path: "/status/500", events: ["license.revoked"])
        for index in 0..<4 {
            XCTAssertEqual(
                try db.enqueue(["license.issued", #"{"n":\#(index),"key":"K-\#(index)"}"#]).status, 0)
        }
        XCTAssertEqual(try db.enqueue(["license.revoked", #"{"key":"K-dead"}"#]).status, 0)
        XCTAssertEqual(try db.deliver().status, 0)
        // The failing endpoint's delivery dead-lettered, one of the others still pending.
        try SQL.execute(
            db.path,
            """
            UPDATE webhook_deliveries SET next_attempt_at = NULL, last_error = 'HTTP 500' WHERE endpoint_id = '\(failing)';
            UPDATE webhook_deliveries SET delivered_at = NULL, next_attempt_at = \(SQL.timeAgo(db.path, "1 minute"))
              WHERE payload_json LIKE '%"n":3%';
            """)
        // Everything 10 days old but the delivered "n":2, delivered an hour ago.
        try SQL.execute(
            db.path,
            """
            UPDATE webhook_deliveries SET created_at = \(SQL.timeAgo(db.path, "10 days"));
            UPDATE webhook_deliveries SET delivered_at = \(SQL.timeAgo(db.path, "10 days")) WHERE delivered_at IS NOT NULL;
            UPDATE webhook_deliveries SET delivered_at = \(SQL.timeAgo(db.path, "1 hour")) WHERE payload_json LIKE '%"n":2%';
            """)
        XCTAssertEqual(try db.count(where: "delivered_at IS NOT NULL"), 4)
        var stats = try object(webhooks(db, ["stats", "--json"]))
        stats.removeValue(forKey: "oldest_due_age_seconds")
        let attempts = try db.count("webhook_delivery_attempts")

        let dry = try object(webhooks(db, ["purge", "--payloads-older-than", "7d", "--dry-run", "--json"]))
        XCTAssertEqual(dry["payloads_erased"] as? Int, 4, "3 delivered and 1 dead, old")
        XCTAssertEqual(dry["deliveries"] as? Int, 0)
        let real = try object(webhooks(db, ["purge", "--payloads-older-than", "7d", "--json"]))
        XCTAssertEqual(real["payloads_erased"] as? Int, 4)
        XCTAssertEqual(try db.count(where: Self.erased), 4)
        XCTAssertEqual(try db.count(where: "\(Self.erased) AND (payload_json LIKE '%K-%')"), 0)
        XCTAssertEqual(
            try db.count(where: "payload_json LIKE '%\"n\":2%' OR payload_json LIKE '%\"n\":3%'"), 2,
            "recent and pending kept")
        XCTAssertEqual(try db.count(), 6, "rows kept (license.revoked went to both endpoints)")
        XCTAssertEqual(try db.count("webhook_delivery_attempts"), attempts, "history kept")
        var after = try object(webhooks(db, ["stats", "--json"]))
        after.removeValue(forKey: "oldest_due_age_seconds")
        XCTAssertEqual(NSDictionary(dictionary: after), NSDictionary(dictionary: stats), "stats unchanged")
        // The dead one is erased: a replay skips it, a retry by id is refused.
        let dead = try SQL.value(
            db.path, "SELECT id FROM webhook_deliveries WHERE endpoint_id = '\(failing)'")
        XCTAssertEqual(
            try object(webhooks(db, ["deliveries", "retry", "--dead", "--json"]))["requeued"] as? Int, 0)
        XCTAssertEqual(try webhooks(db, ["deliveries", "retry", dead]).status, 65)
        // Neither age is a usage error.
        XCTAssertEqual(try webhooks(db, ["purge"]).status, 64)
        XCTAssertEqual(try webhooks(db, ["purge", "--payloads-older-than", "soon"]).status, 64)
    }

    /// `purge --older-than` deletes rows: their bytes (a payload's overflow pages too) are found
    /// nowhere in the database file or its WAL afterwards, also while another program holds the
    /// database open, so that no close of purge's is the last one and checkpoints for it.
    func testPurgedDeliveriesLeaveNoBytesInTheFileOrWAL() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/200", events: ["*"])
        let holder = onPostgreSQL ? nil : try db.holdOpen()
        defer {
            holder?.terminate()
            holder?.waitUntilExit()
        }
        let erin = "erin-5a0c2d@example.com"
        let padding = String(repeating: "erin-5a0c2d-note ", count: 400)
        for index in 0..<3 {
            let note = index == 0 ? padding : ""
            let data = #"{"n":\#(index),"customer":{"email":"\#(erin)"},"note":"\#(note)"}"#
            XCTAssertEqual(try db.enqueue(["license.issued", data]).status, 0)
        }
        XCTAssertEqual(
            try db.enqueue(["license.issued", #"{"customer":{"email":"frank-9b2e@example.com"}}"#]).status, 0)
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try receiver.requests().count, 4)
        // Erin's three delivered ten days ago, Frank's now. On SQLite the update's own WAL frames
        // hold Erin's rows too (the holder keeps the sqlite3 tool's close from checkpointing).
        let old = SQL.timeAgo(db.path, "10 days")
        try SQL.execute(
            db.path,
            """
            UPDATE webhook_deliveries SET created_at = \(old), delivered_at = \(old)
              WHERE payload_json LIKE '%erin-5a0c2d@%';
            """)
        let purge = try object(webhooks(db, ["purge", "--older-than", "7d", "--json"]))
        XCTAssertEqual(purge["deliveries"] as? Int, 3)
        XCTAssertEqual(purge["attempts"] as? Int, 3)
        XCTAssertEqual(try db.count(), 1)
        XCTAssertEqual(try db.count("webhook_delivery_attempts"), 1)

        guard !onPostgreSQL else { return }
        var files = Data()
        for suffix in ["", "-wal"] {
            if let bytes = FileManager.default.contents(atPath: db.path + suffix) { files.append(bytes) }
        }
        XCTAssertNil(files.range(of: Data(erin.utf8)), "purged bytes left in the database or its WAL")
        XCTAssertNil(files.range(of: Data("erin-5a0c2d-note".utf8)), "purged overflow pages left")
        XCTAssertNotNil(files.range(of: Data("frank-9b2e@example.com".utf8)))
        XCTAssertEqual(try SQL.integrityCheck(db.path), "ok")
    }

    /// SQLite: a reader in the middle of a read transaction keeps purge's closing checkpoint from
    /// emptying the WAL; purge does not wait for it (a checkpoint that waits holds writers back
    /// meanwhile), and the rest goes at a later checkpoint, here the last connection's close.
    func testPurgeDoesNotWaitForAReaderAndALaterCheckpointFinishes() throws {
        guard !onPostgreSQL else { return }
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint(events: ["*"])
        let old = SQL.timeAgo(db.path, "10 days")
        try SQL.execute(
            db.path,
            """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
            INSERT INTO webhook_deliveries
                (id, endpoint_id, event_type, payload_json, attempt_count, next_attempt_at, delivered_at, created_at)
            SELECT 'old-' || i, '\(endpoint)', 'license.issued',
                   '{"data":{"customer_email":"gina-31f7@example.com","n":' || i || '}}', 1, NULL, \(old), \(old)
            FROM n
            """)
        let reader = Process()
        reader.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        reader.arguments = [
            "python3", "-c",
            "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN');"
                + " c.execute('SELECT count(*) FROM webhook_deliveries').fetchall(); time.sleep(120)",
            db.path,
        ]
        try reader.run()
        defer {
            reader.terminate()
            reader.waitUntilExit()
        }
        usleep(300_000)
        let start = Date()
        let purge = try object(
            webhooks(db, ["purge", "--older-than", "7d", "--json", "--busy-timeout", "5000"]))
        XCTAssertLessThan(Date().timeIntervalSince(start), 2.5, "purge waited for the reader")
        XCTAssertEqual(purge["deliveries"] as? Int, 50)
        XCTAssertEqual(try db.count(), 0)
        reader.terminate()
        reader.waitUntilExit()
        let again = try object(webhooks(db, ["purge", "--older-than", "7d", "--json"]))
        XCTAssertEqual(again["deliveries"] as? Int, 0)
        var files = Data()
        for suffix in ["", "-wal"] {
            if let bytes = FileManager.default.contents(atPath: db.path + suffix) { files.append(bytes) }
        }
        XCTAssertNil(files.range(of: Data("gina-31f7@example.com".utf8)), "purged bytes left after the close")
        XCTAssertEqual(try SQL.integrityCheck(db.path), "ok")
    }

    /// More rows than one batch holds (100): every one is erased, none twice, counts right.
    /// A value is matched by its bytes on both backends, as SQLite's `=` matches: "Å" written
    /// as U+212B (ANGSTROM SIGN) and as U+00C5 are two values, which Swift's `==` took for one.
    func testEraseWhereMatchesValuesByTheirBytes() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(events: ["*"])
        XCTAssertEqual(try db.enqueue(["license.issued", "{\"name\":\"\u{00C5}sa\"}"]).status, 0)
        XCTAssertEqual(try db.enqueue(["license.issued", "{\"name\":\"\u{212B}sa\"}"]).status, 0)
        let erase = try object(webhooks(db, ["deliveries", "erase", "--where", "data.name=\u{212B}sa", "--json"]))
        XCTAssertEqual(erase["erased"] as? Int, 1)
        XCTAssertEqual(try db.count(where: Self.erased), 1)
        XCTAssertEqual(try db.count(where: "payload_json LIKE '%\u{00C5}sa%'"), 1, "the other spelling kept")
    }

    func testBatchesCoverEveryRow() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint(events: ["*"])
        func insert(_ count: Int, _ prefix: String, delivered: Bool) throws {
            let time = SQL.timeAgo(db.path, delivered ? "10 days" : "1 minute")
            try SQL.execute(
                db.path,
                """
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(count))
                INSERT INTO webhook_deliveries
                    (id, endpoint_id, event_type, payload_json, attempt_count, next_attempt_at, delivered_at, created_at)
                SELECT '\(prefix)-' || i, '\(endpoint)', 'license.issued',
                       '{"event_type":"license.issued","timestamp":"2026-01-01T00:00:00Z","data":{"customer_email":"dana@example.com","n":' || i || '}}',
                       \(delivered ? "1, NULL, \(time)" : "0, \(time), NULL"), \(time)
                FROM n
                """)
        }
        try insert(250, "pending", delivered: false)
        try insert(230, "old", delivered: true)
        let purge = try object(webhooks(db, ["purge", "--payloads-older-than", "7d", "--json"]))
        XCTAssertEqual(purge["payloads_erased"] as? Int, 230)
        XCTAssertEqual(try db.count(where: "\(Self.erased) AND id LIKE 'old-%'"), 230)
        XCTAssertEqual(try db.count(where: Self.erased), 230)
        let erase = try object(
            webhooks(
                db, ["deliveries", "erase", "--where", "data.customer_email=dana@example.com", "--json"]))
        XCTAssertEqual(erase["erased"] as? Int, 250)
        XCTAssertEqual(erase["pending"] as? Int, 250)
        XCTAssertEqual(
            try db.count(
                where:
                    "\(Self.erased) AND next_attempt_at IS NULL AND attempt_count = 1 AND last_error = 'erased'"
            ),
            250)
        XCTAssertEqual(try db.count(), 480)
        let stats = try object(webhooks(db, ["stats", "--json"]))
        XCTAssertEqual(stats["dead"] as? Int, 250)
        XCTAssertEqual(stats["pending"] as? Int, 0)
    }
}
