import Foundation
import XCTest

/// Ids by unique prefix wherever an id is taken, like git (issue 15): an ambiguous prefix and an
/// unknown id are 65, never an empty success.
final class IdPrefixTests: XCTestCase {
    func testPrefixesNameOneRecordAndAmbiguityOrAbsenceIs65() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint()
        let other = try db.addEndpoint("http://127.0.0.1:9/other")
        let delivery = try XCTUnwrap(db.enqueue(["e", "{}"]).lines.first { _ in true })
        func webhooks(_ arguments: [String]) throws -> ProcessResult {
            try runTool("keysat-webhooks", arguments + ["--db", db.path])
        }
        // The shortest prefix that tells the two endpoints apart, and one that does not.
        var length = 1
        while endpoint.prefix(length) == other.prefix(length) { length += 1 }
        let short = String(endpoint.prefix(max(length, 8)))
        let shown = try webhooks(["endpoint", "show", short, "--json"])
        XCTAssertEqual(shown.status, 0, shown.stderr)
        XCTAssertEqual(
            (try JSONSerialization.jsonObject(with: shown.stdout) as? [String: Any])?["id"] as? String,
            endpoint)
        let list = try webhooks(["deliveries", "list", "--endpoint", short, "--json"])
        XCTAssertEqual(list.status, 0, list.stderr)
        XCTAssertEqual((try JSONSerialization.jsonObject(with: list.stdout) as? [Any])?.count, 1)
        let show = try webhooks(["deliveries", "show", String(delivery.prefix(8)), "--json"])
        XCTAssertEqual(show.status, 0, show.stderr)
        XCTAssertEqual(
            (try JSONSerialization.jsonObject(with: show.stdout) as? [String: Any])?["id"] as? String,
            delivery)
        XCTAssertEqual(try webhooks(["endpoint", "disable", short]).status, 0)
        XCTAssertEqual(
            try SQL.value(db.path, "SELECT active FROM webhook_endpoints WHERE id = '\(endpoint)'"), "0")
        XCTAssertEqual(try webhooks(["endpoint", "enable", short]).status, 0)
        XCTAssertEqual(try webhooks(["deliveries", "retry", String(delivery.prefix(8))]).status, 0)

        // Unknown: 65 and a message, for every command that takes an id.
        for arguments in [
            ["endpoint", "show", "ffffffff-0000"], ["endpoint", "disable", "zz"],
            ["deliveries", "show", "ffffffff"],
            ["deliveries", "list", "--endpoint", "ffffffff"], ["deliveries", "retry", "ffffffff"],
            ["deliveries", "retry", "--dead", "--endpoint", "ffffffff"],
        ] {
            let result = try webhooks(arguments)
            XCTAssertEqual(result.status, 65, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("no ") && result.stderr.contains("id prefix"), result.stderr)
        }
        // Ambiguous: a second delivery whose id starts with the same 8 characters (written by
        // another program, as ids are not this project's to choose).
        let twin = String(delivery.prefix(8)) + "-0000-4000-8000-000000000000"
        try SQL.execute(
            db.path,
            "INSERT INTO webhook_deliveries (id, endpoint_id, event_type, payload_json, attempt_count, next_attempt_at, created_at) SELECT '\(twin)', endpoint_id, event_type, payload_json, 0, next_attempt_at, created_at FROM webhook_deliveries WHERE id = '\(delivery)'"
        )
        let ambiguous = try webhooks(["deliveries", "show", String(delivery.prefix(8))])
        XCTAssertEqual(ambiguous.status, 65, ambiguous.stderr)
        XCTAssertTrue(ambiguous.stderr.contains("is ambiguous"), ambiguous.stderr)
        XCTAssertTrue(
            ambiguous.stderr.contains(delivery) && ambiguous.stderr.contains(twin), ambiguous.stderr)
        XCTAssertEqual(try webhooks(["deliveries", "show", String(delivery.prefix(20))]).status, 0)
    }
}

/// Small things an operator meets (issue 15): the whsec form on show --show-secret, contradictory
/// flags refused, the status named for an empty-bodied failure.
final class OperatorDetailTests: XCTestCase {
    func testShowSecretPrintsBothFormsAndContradictionsAreRefused() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let id = try db.addEndpoint()
        let secret = try SQL.value(db.path, "SELECT secret FROM webhook_endpoints WHERE id = '\(id)'")
        let show = try runTool("keysat-webhooks", ["endpoint", "show", id, "--show-secret", "--db", db.path])
        XCTAssertEqual(show.status, 0, show.stderr)
        // Independently: whsec_ is base64 of the secret's bytes (Foundation's encoder).
        let whsec = "whsec_" + Data(secret.utf8).base64EncodedString()
        XCTAssertTrue(show.lines.contains { $0.hasPrefix("secret:") && $0.hasSuffix(secret) }, show.output)
        XCTAssertTrue(show.lines.contains { $0.hasPrefix("whsec:") && $0.hasSuffix(whsec) }, show.output)
        let hidden = try runTool("keysat-webhooks", ["endpoint", "show", id, "--db", db.path])
        XCTAssertFalse(hidden.output.contains(secret) || hidden.output.contains("whsec_"), hidden.output)

        let both = try runTool(
            "keysat-webhooks", ["endpoint", "update", id, "--ordered", "--no-ordered", "--db", db.path])
        XCTAssertEqual(both.status, 64, both.stderr)
        XCTAssertTrue(both.stderr.contains("'--ordered' and '--no-ordered'"), both.stderr)
        XCTAssertEqual(
            try SQL.value(db.path, "SELECT ordered FROM webhook_endpoints WHERE id = '\(id)'"), "0")
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "update", id, "--ordered", "--db", db.path]).status, 0
        )
        XCTAssertEqual(
            try SQL.value(db.path, "SELECT ordered FROM webhook_endpoints WHERE id = '\(id)'"), "1")
    }

    func testTheSameURLTwiceNeedsAllowDuplicate() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let first = try runTool(
            "keysat-webhooks", ["endpoint", "add", "https://crm.example/hook", "--db", db.path])
        XCTAssertEqual(first.status, 0, first.stderr)
        let again = try runTool(
            "keysat-webhooks", ["endpoint", "add", "https://crm.example/hook", "--db", db.path])
        XCTAssertEqual(again.status, 65, again.stderr)
        XCTAssertTrue(again.stderr.contains("--allow-duplicate"), again.stderr)
        XCTAssertEqual(try db.count("webhook_endpoints"), 1)
        let allowed = try runTool(
            "keysat-webhooks",
            ["endpoint", "add", "https://crm.example/hook", "--allow-duplicate", "--db", db.path])
        XCTAssertEqual(allowed.status, 0, allowed.stderr)
        XCTAssertEqual(try db.count("webhook_endpoints"), 2)
    }

    func testAnEmptyBodiedFailureNamesItsStatus() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/redirect")
        let id = try XCTUnwrap(db.enqueue(["e", "{}"]).lines.first)
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try db.row(id)["last_error"] as? String, "non-2xx response: HTTP 302, empty body")
    }
}

/// Tables for a person fit 100 columns, with short ids and relative times (issue 15).
final class ReadableTableTests: XCTestCase {
    func testTablesFitOneHundredColumnsUnlessWide() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let long = "http://127.0.0.1:9/" + String(repeating: "very-long-path/", count: 10)
        let id = try db.addEndpoint(long, events: ["license.issued"])
        XCTAssertEqual(
            try runTool(
                "keysat-webhooks",
                [
                    "endpoint", "update", id, "--description", String(repeating: "words ", count: 20), "--db",
                    db.path,
                ]
            ).status, 0)
        let delivery = try XCTUnwrap(db.enqueue(["license.issued", "{}"]).lines.first)
        _ = try db.deliver(["--timeout", "1"])
        for arguments in [["deliveries", "list"], ["endpoint", "list"], ["stats"]] {
            let narrow = try runTool("keysat-webhooks", arguments + ["--db", db.path])
            XCTAssertEqual(narrow.status, 0, narrow.stderr)
            for line in narrow.lines { XCTAssertLessThanOrEqual(line.count, 100, "\(arguments): \(line)") }
            XCTAssertFalse(narrow.output.contains(id), "\(arguments) prints short ids")
            XCTAssertTrue(narrow.output.contains(id.prefix(8)), "\(arguments)")
            let wide = try runTool("keysat-webhooks", arguments + ["--wide", "--db", db.path])
            XCTAssertTrue(wide.output.contains(id), "\(arguments) --wide prints whole ids")
        }
        let list = try runTool("keysat-webhooks", ["deliveries", "list", "--db", db.path])
        XCTAssertTrue(list.output.contains(String(delivery.prefix(8))))
        XCTAssertTrue(list.lines[1].contains("s ago"), list.output)
        let stats = try runTool("keysat-webhooks", ["stats", "--db", db.path])
        XCTAssertTrue(
            stats.lines.contains {
                $0.hasPrefix("oldest due:") && ($0.hasSuffix("s ago") || $0.hasSuffix(" -"))
            }, stats.output)
    }
}
