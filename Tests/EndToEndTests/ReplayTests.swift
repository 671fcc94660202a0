import Foundation
import XCTest

/// Replaying a range (issue 15): selections counted against the database by sqlite3.
final class ReplayTests: XCTestCase {
    func testRetrySelectsByStatusEndpointEventAndTime() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let a = try db.addEndpoint("http://127.0.0.1:9/a")
        let b = try db.addEndpoint("http://127.0.0.1:9/b")
        for index in 0..<6 {
            _ = try db.enqueue([index % 2 == 0 ? "license.issued" : "license.revoked", "{}"])
        }
        // 12 rows: make a third delivered, a third dead, the rest pending; spread their creation
        // over three days.
        let row = SQL.writtenOrder(db.path)
        try SQL.execute(
            db.path,
            """
            UPDATE webhook_deliveries SET created_at = \(SQL.secondsAgo(db.path, "(\(row) % 3) * 86400 + 3600"));
            UPDATE webhook_deliveries SET delivered_at = created_at, next_attempt_at = NULL, attempt_count = 1 WHERE \(row) % 3 = 0;
            UPDATE webhook_deliveries SET next_attempt_at = NULL, attempt_count = 10 WHERE \(row) % 3 = 1;
            """)
        func count(_ condition: String) throws -> Int { try db.count(where: condition) }
        let dead = "delivered_at IS NULL AND next_attempt_at IS NULL AND attempt_count > 0"
        func retry(_ arguments: [String]) throws -> [String: Any] {
            let result = try runTool(
                "keysat-webhooks", ["deliveries", "retry"] + arguments + ["--json", "--db", db.path])
            XCTAssertEqual(result.status, 0, "\(arguments): \(result.stderr)")
            return try XCTUnwrap(JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        }
        // Dry runs count exactly what sqlite3 counts, and change nothing.
        let before = try SQL.dump(db.path)
        let cases: [([String], String)] = [
            (["--status", "dead"], dead),
            (["--status", "delivered"], "delivered_at IS NOT NULL"),
            (["--status", "all"], "delivered_at IS NOT NULL OR (\(dead))"),
            (["--status", "dead", "--endpoint", a], "(\(dead)) AND endpoint_id = '\(a)'"),
            (
                ["--status", "all", "--event", "license.revoked"],
                "(delivered_at IS NOT NULL OR (\(dead))) AND event_type = 'license.revoked'"
            ),
            (
                ["--status", "all", "--since", "36h"],
                "(delivered_at IS NOT NULL OR (\(dead))) AND created_at >= \(SQL.timeAgo(db.path, "36 hours"))"
            ),
            (
                ["--status", "all", "--until", "36h"],
                "(delivered_at IS NOT NULL OR (\(dead))) AND created_at < \(SQL.timeAgo(db.path, "36 hours"))"
            ),
        ]
        for (arguments, condition) in cases {
            let object = try retry(arguments + ["--dry-run"])
            XCTAssertEqual(object["requeued"] as? Int, try count(condition), "\(arguments)")
            XCTAssertEqual((object["ids"] as? [String])?.count, try count(condition), "\(arguments)")
            XCTAssertEqual(object["dry_run"] as? Bool, true)
        }
        XCTAssertEqual(try SQL.dump(db.path), before, "--dry-run changed the database")
        // Delivered ones need --force; contradictory or incomplete selections are 64.
        for arguments in [
            ["--status", "delivered"], ["--status", "all"], ["--dead", "--status", "delivered"], [],
            ["--endpoint", a], ["--status", "dead", "--since", "soon"],
        ] {
            let result = try runTool(
                "keysat-webhooks", ["deliveries", "retry"] + arguments + ["--db", db.path])
            XCTAssertEqual(result.status, 64, "\(arguments): \(result.stderr)")
        }
        // For real: B's dead ones, then everything delivered of license.issued.
        let deadOfB = try count("(\(dead)) AND endpoint_id = '\(b)'")
        XCTAssertEqual(try retry(["--status", "dead", "--endpoint", b])["requeued"] as? Int, deadOfB)
        XCTAssertEqual(try count("(\(dead)) AND endpoint_id = '\(b)'"), 0)
        let deliveredIssued = try count("delivered_at IS NOT NULL AND event_type = 'license.issued'")
        XCTAssertEqual(
            try retry(["--status", "delivered", "--event", "license.issued", "--force"])["requeued"] as? Int,
            deliveredIssued)
        XCTAssertEqual(try count("delivered_at IS NOT NULL AND event_type = 'license.issued'"), 0)
        XCTAssertEqual(
            try count("next_attempt_at IS NOT NULL AND attempt_count = 0"), 4 + deadOfB + deliveredIssued)
        let text = try runTool(
            "keysat-webhooks", ["deliveries", "retry", "--status", "all", "--dry-run", "--db", db.path])
        XCTAssertEqual(text.lines.last, "would re-queue \(text.lines.count - 1) deliveries")
    }
}

/// A mistyped event type is warned about, and refused with --strict (issue 15).
final class EventTypeCatalogueTests: XCTestCase {
    func testUnknownEventTypesAreWarnedAboutAndStrictRefusesThem() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()  // every event
        try db.addEndpoint("http://127.0.0.1:9/orders", events: ["order.paid"])
        // Keysat's own, and one subscribed to by name: silent.
        for event in ["license.issued", "order.paid"] {
            let result = try db.enqueue([event, "{}"])
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(result.stderr, "", event)
        }
        // A typo: queued (to the '*' endpoint), with one warning that suggests the right one.
        let typo = try db.enqueue(["licence.isued", "{}"])
        XCTAssertEqual(typo.status, 0, typo.stderr)
        XCTAssertEqual(typo.lines.count, 1)
        XCTAssertTrue(
            typo.stderr.hasPrefix("keysat-enqueue: warning: event type 'licence.isued'"), typo.stderr)
        XCTAssertTrue(typo.stderr.contains("did you mean 'license.issued'?"), typo.stderr)
        XCTAssertEqual(typo.stderr.split(separator: "\n").count, 1)
        // --strict: 65, nothing written.
        let before = try db.count()
        let strict = try db.enqueue(["--strict", "licence.isued", "{}"])
        XCTAssertEqual(strict.status, 65, strict.stderr)
        XCTAssertTrue(strict.stderr.contains("keysat-webhooks event-types add licence.isued"), strict.stderr)
        XCTAssertEqual(try db.count(), before)
        // Declared: known, listed, and accepted by --strict; forgotten: unknown again.
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["event-types", "add", "shop.refund", "--db", db.path]).status, 0)
        XCTAssertEqual(try db.enqueue(["--strict", "shop.refund", "{}"]).status, 0)
        let listed = try runTool("keysat-webhooks", ["event-types", "--json", "--db", db.path])
        let entries = try XCTUnwrap(JSONSerialization.jsonObject(with: listed.stdout) as? [[String: String]])
        let sources = Dictionary(uniqueKeysWithValues: entries.map { ($0["name"]!, $0["source"]!) })
        XCTAssertEqual(sources["license.issued"], "keysat")
        XCTAssertEqual(sources["order.paid"], "subscribed")
        XCTAssertEqual(sources["shop.refund"], "declared")
        XCTAssertNil(sources["licence.isued"])
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["event-types", "remove", "shop.refund", "--db", db.path]).status,
            0)
        XCTAssertEqual(try db.enqueue(["--strict", "shop.refund", "{}"]).status, 65)
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["event-types", "remove", "shop.refund", "--db", db.path]).status,
            65)
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["event-types", "add", "bad type", "--db", db.path]).status, 65)
    }
}
