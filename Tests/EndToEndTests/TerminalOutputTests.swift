import Foundation
import XCTest

/// What a receiver or a payload says reaches a person's terminal escaped, and JSON output stays
/// exact (issue 12, classes 9 and 10).
final class TerminalOutputTests: XCTestCase {
    /// A receiver that answers every request 500 with a body of terminal control sequences.
    private func hostileReceiver(_ scratch: Scratch) throws -> (Process, Int) {
        let script = """
            import socket, sys, os
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0)); s.listen(16)
            open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1])); os.rename(sys.argv[1] + ".tmp", sys.argv[1])
            body = b"\\x1b[2J\\x1b]0;pwned\\x07\\rboo\\xc2\\x9b31m"
            while True:
                c, _ = s.accept(); data = b""
                while b"\\r\\n\\r\\n" not in data:
                    chunk = c.recv(65536)
                    if not chunk: break
                    data += chunk
                c.sendall(b"HTTP/1.1 500 Oops\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n" % len(body) + body)
                c.close()
            """
        let portFile = scratch.file("hostile.port")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, portFile]
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: portFile) && Date() < deadline { usleep(20_000) }
        return (process, Int(try String(contentsOfFile: portFile, encoding: .utf8)) ?? 0)
    }

    private func assertNoControls(
        _ text: String, _ what: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        // C0 but the newline, DEL, C1, line and paragraph separators, bidirectional formatting.
        let raw = text.unicodeScalars.filter {
            ($0.value < 0x20 && $0 != "\n") || (0x7F...0x9F).contains($0.value)
                || [0x2028, 0x2029, 0x200E, 0x200F, 0x061C].contains($0.value)
                || (0x202A...0x202E).contains($0.value) || (0x2066...0x2069).contains($0.value)
        }
        XCTAssertTrue(
            raw.isEmpty, "\(what) printed raw control characters: \(raw.map { $0.value })", file: file,
            line: line)
    }

    func testReceiverBytesArePrintedEscapedAndJSONStaysExact() throws {
        let scratch = try Scratch()
        let (receiver, port) = try hostileReceiver(scratch)
        defer { receiver.terminate() }
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint("http://127.0.0.1:\(port)/hook")
        // A payload with a DEL and a C1 control inside a JSON string (both valid JSON).
        let id = try XCTUnwrap(db.enqueue(["e", "{\"note\":\"a\u{7f}b\u{9b}c\"}"]).lines.first)
        let run = try db.deliver()
        XCTAssertEqual(run.status, 0, run.stderr)
        assertNoControls(run.stderr, "keysat-deliver's log")

        let show = try runTool("keysat-webhooks", ["deliveries", "show", id, "--db", db.path])
        XCTAssertEqual(show.status, 0, show.stderr)
        assertNoControls(show.output, "deliveries show")
        XCTAssertTrue(
            show.output.contains("\\u001b[2J\\u001b]0;pwned\\u0007\\u000dboo\\u009b31m"), show.output)
        XCTAssertTrue(show.output.contains("a\\u007fb\\u009bc"), show.output)
        for arguments in [
            ["deliveries", "list"], ["stats"], ["endpoint", "list"], ["endpoint", "show", endpoint],
        ] {
            let result = try runTool("keysat-webhooks", arguments + ["--db", db.path])
            XCTAssertEqual(result.status, 0, result.stderr)
            assertNoControls(result.output, arguments.joined(separator: " "))
        }
        // JSON output: escaped as JSON, and exactly the bytes received once parsed.
        let json = try runTool("keysat-webhooks", ["deliveries", "show", id, "--json", "--db", db.path])
        assertNoControls(json.output, "deliveries show --json")
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: json.stdout) as? [String: Any])
        let error = try XCTUnwrap(object["last_error"] as? String)
        XCTAssertEqual(error, "non-2xx response: \u{1b}[2J\u{1b}]0;pwned\u{07}\rboo\u{9b}31m")
        let data = (object["payload"] as? [String: Any])?["data"] as? [String: Any]
        XCTAssertEqual(data?["note"] as? String, "a\u{7f}b\u{9b}c")
    }

    func testADeeplyNestedPayloadPrintsInLinearSpace() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()
        let id = try XCTUnwrap(db.enqueue(["e", "{}"]).lines.first)
        let nest = String(repeating: "[", count: 500) + "1" + String(repeating: "]", count: 500)
        let payload = "[" + Array(repeating: nest, count: 200).joined(separator: ",") + "]"
        let update = "UPDATE webhook_deliveries SET payload_json = '\(payload)' WHERE id = '\(id)';"
        try SQL.execute(db.path, update)
        let started = Date()
        let show = try runTool("keysat-webhooks", ["deliveries", "show", id, "--db", db.path])
        XCTAssertEqual(show.status, 0, show.stderr)
        XCTAssertLessThan(show.stdout.count, 80 * payload.utf8.count, "output grows faster than the payload")
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
    }

    // MARK: - Every command, every text column (issue 20)

    /// Issue 20: text from the database reached terminals raw in six places the last round
    /// missed (`keysat-deliver --dry-run`, `deliveries retry --dry-run` and its two warnings,
    /// `endpoint remove`, `endpoint rotate-secret`). Every text column of every table is given
    /// terminal controls (ESC sequences, BEL, CR, the 8-bit CSI 0x9b, a right-to-left override)
    /// and a newline followed by a forged line, then every command that prints runs on it: no
    /// raw control reaches standard output or error, no line is forged, and JSON stays JSON.
    func testEveryCommandOnADatabaseWithControlsInEveryTextColumn() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let (e1, e2) = (try db.addEndpoint(), try db.addEndpoint())
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "rotate-secret", e1, "--db", db.path]).status, 0)
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["event-types", "add", "custom.thing", "--db", db.path]).status, 0)
        XCTAssertEqual(try db.enqueue(["--idempotency-key", "k1", "license.issued", #"{"n":1}"#]).status, 0)
        XCTAssertEqual(try runTool("keysat-deliver", ["--db", db.path]).status, 0)
        try SQL.execute(db.path, Self.hostileRows(e2: e2, postgreSQL: onPostgreSQL))
        XCTAssertEqual(try db.count("webhook_deliveries", where: "event_type LIKE '%FORGED'"), 2)
        let (p1, p2) = (String(e1.prefix(8)), String(e2.prefix(8)))
        let d1 = try SQL.value(
            db.path, "SELECT substr(id, 1, 8) FROM webhook_deliveries WHERE endpoint_id LIKE '\(p1)%'")
        let d2 = try SQL.value(
            db.path, "SELECT substr(id, 1, 8) FROM webhook_deliveries WHERE endpoint_id LIKE '\(p2)%'")
        let database = ["--db", db.path]
        let human: [(String, [String])] = [
            ("keysat-webhooks", ["init"]),
            ("keysat-webhooks", ["endpoint", "list"]), ("keysat-webhooks", ["endpoint", "list", "--wide"]),
            ("keysat-webhooks", ["endpoint", "show", p1]),
            ("keysat-webhooks", ["endpoint", "show", p1, "--show-secret"]),
            ("keysat-webhooks", ["deliveries", "list"]),
            ("keysat-webhooks", ["deliveries", "list", "--wide"]),
            ("keysat-webhooks", ["deliveries", "list", "--status", "dead"]),
            ("keysat-webhooks", ["deliveries", "show", d1]), ("keysat-webhooks", ["deliveries", "show", d2]),
            ("keysat-webhooks", ["deliveries", "retry", "--status", "dead", "--endpoint", p2, "--dry-run"]),
            ("keysat-webhooks", ["stats"]), ("keysat-webhooks", ["stats", "--wide"]),
            ("keysat-webhooks", ["event-types"]), ("keysat-webhooks", ["event-types", "list"]),
            ("keysat-webhooks", ["purge", "--older-than", "0s", "--status", "all-finished", "--dry-run"]),
            ("keysat-deliver", ["--dry-run", "--allow-network", "127.0.0.1"]),
            ("keysat-deliver", ["-v", "--dry-run"]),
            ("keysat-enqueue", ["--idempotency-key", "k2", "license.issued", "1"]),
            ("keysat-enqueue", ["--idempotency-key", "k1\u{202e}", "license.issued", #"{"n":1}"#]),
            ("keysat-webhooks", ["deliveries", "retry", d2]),
            ("keysat-webhooks", ["deliveries", "retry", "--status", "dead", "--endpoint", p2]),
            ("keysat-webhooks", ["endpoint", "update", p1, "--description", "d"]),
            ("keysat-webhooks", ["endpoint", "disable", p1]),
            ("keysat-webhooks", ["endpoint", "enable", p1]),
            ("keysat-webhooks", ["endpoint", "test", p1]),
            ("keysat-deliver", ["-v", "--allow-network", "127.0.0.1"]),
            ("keysat-deliver", ["--log-level", "debug"]),
            ("keysat-webhooks", ["endpoint", "rotate-secret", p1, "--grace", "0"]),
            ("keysat-webhooks", ["event-types", "remove", "custom.thing"]),
            ("keysat-webhooks", ["purge", "--older-than", "0s", "--status", "all-finished"]),
            ("keysat-webhooks", ["endpoint", "remove", p2, "--force"]),
            ("keysat-webhooks", ["endpoint", "remove", p1, "--force"]),
        ]
        var ran = Set<Int32>()
        for (program, arguments) in human {
            let result = try runTool(program, arguments + database)
            let what = ([program] + arguments).joined(separator: " ")
            XCTAssertNotEqual(result.status, 70, "\(what): \(result.stderr)")
            ran.insert(result.status)
            assertNoControls(result.output, what + " (standard output)")
            assertNoControls(result.stderr, what + " (standard error)")
            for line in (result.output + result.stderr).split(separator: "\n") where line.hasPrefix("FORGED")
            {
                XCTFail("\(what) printed a line the database forged: \(line)")
            }
        }
        XCTAssertTrue(ran.contains(0))
    }

    /// The same database read by every command's --json: valid JSON, the controls escaped in it.
    func testJSONOutputOfEveryCommandStaysJSONOnControlsInEveryTextColumn() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let (e1, e2) = (try db.addEndpoint(), try db.addEndpoint())
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "rotate-secret", e1, "--db", db.path]).status, 0)
        XCTAssertEqual(try db.enqueue(["--idempotency-key", "k1", "license.issued", #"{"n":1}"#]).status, 0)
        XCTAssertEqual(try runTool("keysat-deliver", ["--db", db.path]).status, 0)
        try SQL.execute(db.path, Self.hostileRows(e2: e2, postgreSQL: onPostgreSQL))
        let p1 = String(e1.prefix(8))
        let d1 = try SQL.value(
            db.path, "SELECT substr(id, 1, 8) FROM webhook_deliveries WHERE endpoint_id LIKE '\(p1)%'")
        let commands: [(String, [String])] = [
            ("keysat-webhooks", ["endpoint", "list"]), ("keysat-webhooks", ["endpoint", "show", p1]),
            ("keysat-webhooks", ["deliveries", "list"]), ("keysat-webhooks", ["deliveries", "show", d1]),
            ("keysat-webhooks", ["deliveries", "retry", "--status", "dead", "--dry-run"]),
            ("keysat-webhooks", ["stats"]), ("keysat-webhooks", ["event-types"]),
            ("keysat-deliver", ["--dry-run"]),
            ("keysat-enqueue", ["--idempotency-key", "k2", "license.issued", "1"]),
        ]
        for (program, arguments) in commands {
            let result = try runTool(program, arguments + ["--json", "--db", db.path])
            let what = ([program] + arguments + ["--json"]).joined(separator: " ")
            XCTAssertEqual(result.status, 0, "\(what): \(result.stderr)")
            assertNoControls(result.output, what)
            XCTAssertNoThrow(
                try JSONSerialization.jsonObject(with: result.stdout, options: [.fragmentsAllowed]),
                "\(what): \(result.output)")
            XCTAssertTrue(result.output.contains("\\u001b"), "\(what) lost the text: \(result.output)")
        }
    }

    /// SQL giving every text column of every table terminal controls and a forged line; ids and
    /// endpoint ids changed alike in every table, so rows still refer to each other (the totals
    /// follow their deliveries' endpoint ids by trigger). `e2` is made
    /// disabled with a dead delivery (for `retry`'s warnings); the other endpoint's delivery is due.
    /// Controls in every text column of every table. A time column of PostgreSQL
    /// (`timestamptz`) cannot hold text, so there it keeps a time; SQLite's time columns are
    /// text and get the controls too.
    private static func hostileRows(e2: String, postgreSQL: Bool) -> String {
        let c = { (code: Int) in postgreSQL ? "chr(\(code))" : "char(\(code))" }
        // ESC [2J, an OSC title ended by BEL, CR, the 8-bit CSI (U+009B), RLO, then a forged line.
        let h =
            "\(c(27)) || '[2J' || \(c(27)) || ']0;pwned' || \(c(7)) || \(c(13)) || 'boo' || \(c(155)) || '31m' || \(c(8238)) || 'evil' || \(c(10)) || 'FORGED'"
        // The same without the newline, where a multi-line block is printed as such (payloads).
        let block = "\(c(27)) || '[2J' || \(c(7)) || \(c(13)) || \(c(155)) || '31m' || \(c(8238)) || 'evil'"
        let past = "'2020-01-01T00:00:00.000000+00:00'"
        let future = "'2099-01-01T00:00:00.000000+00:00'"
        let time = { (value: String) in postgreSQL ? value : "\(value) || \(h)" }
        let array = postgreSQL ? "json_build_array" : "json_array"
        let object = postgreSQL ? "json_build_object" : "json_object"
        let asText = postgreSQL ? "::text" : ""
        let keyed = "\(array)(\(object)('id', 'd' || \(h), 'endpoint_id', 'x' || \(h)))\(asText)"
        let state =
            postgreSQL
            ? "INSERT INTO keysat_webhooks_state (name, value) VALUES ('n' || \(h), 'v' || \(h)) ON CONFLICT (name) DO UPDATE SET value = excluded.value"
            : "INSERT OR REPLACE INTO keysat_webhooks_state (name, value) VALUES ('n' || \(h), 'v' || \(h))"
        return """
            UPDATE webhook_endpoints SET id = id || \(h), url = url || \(h), secret = secret || \(h),
                event_types = \(array)('*', 'e' || \(h))\(asText), description = \(h),
                created_at = \(time("created_at")), updated_at = \(time("updated_at")),
                previous_secret = coalesce(previous_secret, '') || \(h),
                previous_secret_expires_at = \(time(future)),
                disabled_reason = \(h), disabled_at = \(time(past)),
                active = \(postgreSQL ? "(id <> '\(e2)')::integer" : "id <> '\(e2)'");
            UPDATE webhook_deliveries SET id = id || \(h), endpoint_id = endpoint_id || \(h),
                event_type = event_type || \(h), payload_json = payload_json || \(block),
                last_error = \(h), created_at = \(time("created_at")), next_attempt_at = \(time(past)),
                delivered_at = NULL;
            UPDATE webhook_deliveries SET next_attempt_at = NULL, attempt_count = 10
                WHERE endpoint_id LIKE '\(e2)%';
            UPDATE webhook_delivery_attempts SET delivery_id = delivery_id || \(h),
                started_at = \(time("started_at")), error = \(h), response_body = \(block);
            UPDATE keysat_webhooks_idempotency SET key = 'k1' || \(c(8238)),
                event_type = event_type || \(h), created_at = \(time(future)),
                deliveries_json = \(keyed),
                request_hash = request_hash || \(h);
            INSERT INTO keysat_webhooks_idempotency (key, event_type, deliveries_json, created_at, request_hash)
                VALUES ('k2', 'license.issued', \(keyed), \(time(future)), NULL);
            \(state);
            UPDATE keysat_webhooks_state SET value = value || \(h);
            UPDATE keysat_webhooks_event_types SET name = name || \(h), declared_at = \(time("declared_at"));
            UPDATE keysat_webhooks_endpoint_health SET endpoint_id = endpoint_id || \(h),
                last_success_at = \(time(past)), last_failure_at = \(time(past));
            UPDATE keysat_webhooks_attempt_minutes SET endpoint_id = endpoint_id || \(h), minute = \(time("minute"));
            UPDATE keysat_webhooks_schema SET applied_at = \(time("applied_at"));
            """
    }
}
