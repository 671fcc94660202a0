import Foundation
import XCTest

/// Subscriptions with `PREFIX.*` patterns (issue 22), on the backend KEYSAT_TEST_BACKEND names.
final class EventPatternTests: XCTestCase {
    func testAPatternTakesTheEventsUnderItsPrefixOnWholeSegments() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/204/license", events: ["license.*"])
        try db.addEndpoint(
            on: receiver, path: "/status/204/deep", events: ["license.a.*", "machine.activated"])
        try db.addEndpoint(on: receiver, path: "/status/204/all")
        for event in [
            // (webhook.* is keysat-deliver's own: keysat-enqueue refuses it, OperationalEventTests.)
            "license.issued", "machine.activated", "license", "licenses.x", "license.a.b",
        ] {
            let result = try db.enqueue([event, "{}"])
            XCTAssertEqual(result.status, 0, result.stderr)
        }
        XCTAssertEqual(try db.deliver().status, 0)
        var received: [String: [String]] = [:]
        for request in try receiver.requests() {
            XCTAssertEqual(request.signatureOK, true)
            let body = try XCTUnwrap(JSONSerialization.jsonObject(with: request.body) as? [String: Any])
            received[request.path, default: []].append(try XCTUnwrap(body["event_type"] as? String))
        }
        XCTAssertEqual(received["/status/204/license"]?.sorted(), ["license.a.b", "license.issued"])
        XCTAssertEqual(received["/status/204/deep"]?.sorted(), ["license.a.b", "machine.activated"])
        // '*' takes every event (but keysat-webhooks' own namespace: OperationalEventTests).
        XCTAssertEqual(
            received["/status/204/all"]?.sorted(),
            ["license", "license.a.b", "license.issued", "licenses.x", "machine.activated"])
        // The pattern is stored as given and is not an event type of its own; what it matches
        // is known (no warning, --strict takes it); what it does not match is not.
        let listed = try runTool("keysat-webhooks", ["event-types", "--json", "--db", db.path])
        let names = try XCTUnwrap(JSONSerialization.jsonObject(with: listed.stdout) as? [[String: String]])
            .compactMap { $0["name"] }
        XCTAssertFalse(names.contains("license.*"), "\(names)")
        XCTAssertFalse(names.contains("license.a.*"), "\(names)")
        let known = try db.enqueue(["--strict", "license.renewed", "{}"])
        XCTAssertEqual(known.status, 0, known.stderr)
        XCTAssertEqual(known.stderr, "")
        XCTAssertEqual(try db.enqueue(["--strict", "licenses.renewed", "{}"]).status, 65)
    }

    func testAStarAnywhereButATrailingDotStarIsRefusedWith64AndNothingIsWritten() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let id = try db.addEndpoint(events: ["license.*"])
        let before = try SQL.dump(db.path)
        for pattern in ["lic*", "license.*.*", "*.issued", ".*", "license..*", "a*b", "**", "license.* "] {
            for arguments in [
                ["endpoint", "add", "http://127.0.0.1:9/x", "--allow-duplicate", "--event", pattern],
                ["endpoint", "update", id, "--event", pattern],
            ] {
                let result = try runTool("keysat-webhooks", arguments + ["--db", db.path])
                XCTAssertEqual(result.status, 64, "\(arguments): \(result.stderr)")
                XCTAssertEqual(result.lines.count, 0)
                let lines = result.stderr.split(separator: "\n")
                XCTAssertEqual(lines.count, 1, result.stderr)
                XCTAssertTrue(result.stderr.hasPrefix("keysat-webhooks: error: event pattern"), result.stderr)
                XCTAssertTrue(result.stderr.contains("--help"), result.stderr)
            }
        }
        XCTAssertEqual(try SQL.dump(db.path), before)
        // The forms that are patterns, and '*', are taken and shown as given.
        let update = try runTool(
            "keysat-webhooks",
            [
                "endpoint", "update", id, "--event", "webhook.*", "--event", "*", "--event", "a.b.*",
                "--json", "--db", db.path,
            ])
        XCTAssertEqual(update.status, 0, update.stderr)
        let shown = try XCTUnwrap(JSONSerialization.jsonObject(with: update.stdout) as? [String: Any])
        XCTAssertEqual(shown["event_types"] as? [String], ["webhook.*", "*", "a.b.*"])
    }
}
