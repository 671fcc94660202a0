import Foundation
import XCTest

/// Issue 20: event types beginning with `-` were accepted. Every command that takes an event
/// type refuses one with 65 and the same words (`EventType.validate`), and writes nothing.
final class EventTypeRefusalTests: XCTestCase {
    func testAnEventTypeBeginningWithADashIsRefusedEverywhere() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint()
        let secret = try scratch.write("secret", String(repeating: "ab", count: 32))
        let before = try SQL.dump(db.path)
        let commands: [(String, [String])] = [
            ("keysat-enqueue", ["--db", db.path, "--", "-rf", "{}"]),
            ("keysat-enqueue", ["--db", db.path, "--", "--help", "{}"]),
            ("keysat-webhooks", ["event-types", "add", "--db", db.path, "--", "-license.issued"]),
            (
                "keysat-webhooks",
                [
                    "endpoint", "add", "http://127.0.0.1:9/x", "--secret-file", secret, "--event=-x", "--db",
                    db.path,
                ]
            ),
            ("keysat-webhooks", ["endpoint", "update", endpoint, "--event=-x", "--db", db.path]),
            ("keysat-webhooks", ["endpoint", "test", endpoint, "--event=-x", "--db", db.path]),
            ("keysat-webhooks", ["deliveries", "retry", "--status", "dead", "--event=-x", "--db", db.path]),
        ]
        for (program, arguments) in commands {
            let refused = try runTool(program, arguments)
            let name = ([program] + arguments).joined(separator: " ")
            XCTAssertEqual(refused.status, 65, "\(name): \(refused.stderr)")
            XCTAssertTrue(refused.stderr.contains("begins with '-'"), "\(name): \(refused.stderr)")
        }
        XCTAssertEqual(try SQL.dump(db.path), before, "nothing was written")
    }
}
