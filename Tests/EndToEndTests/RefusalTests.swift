import Foundation
import XCTest

/// A destination the network policy refuses is said, not swallowed (issue 11).
final class RefusalTests: XCTestCase {
    func testARefusedDestinationIsWarnedOncePerEndpointAndShownByDryRun() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let first = try db.addEndpoint(on: receiver, path: "/status/204")
        let second = try db.addEndpoint(on: receiver, path: "/status/200")
        for index in 0..<3 { _ = try db.enqueue(["license.issued", "{\"n\":\(index)}"]) }
        let policy = ["KEYSAT_ALLOW_NETWORKS": ""]

        let dry = try runTool("keysat-deliver", ["--db", db.path, "--dry-run"], environment: policy)
        XCTAssertEqual(dry.status, 0, dry.stderr)
        XCTAssertEqual(dry.lines.count, 6, dry.output)
        for line in dry.lines {
            XCTAssertTrue(line.hasSuffix(" refused:127.0.0.1"), line)
        }
        XCTAssertEqual(try receiver.requests().count, 0)

        let run = try runTool("keysat-deliver", ["--db", db.path], environment: policy)
        XCTAssertEqual(run.status, 0, run.stderr)
        let warnings = run.stderr.split(separator: "\n").filter {
            $0.contains("destination refused by the network policy")
        }
        XCTAssertEqual(warnings.count, 2, run.stderr)
        for endpoint in [first, second] {
            XCTAssertEqual(warnings.filter { $0.contains("endpoint_id=\(endpoint)") }.count, 1, run.stderr)
        }
        XCTAssertTrue(
            warnings.allSatisfy {
                $0.contains("address=127.0.0.1") && $0.contains("--allow-network 127.0.0.1")
            })
        XCTAssertTrue(warnings.allSatisfy { $0.contains("host=127.0.0.1") }, run.stderr)
        XCTAssertEqual(try receiver.requests().count, 0)

        // Allowed: the same listing without marks, and a quiet run.
        let allowed = try db.deliver(["--dry-run"])
        XCTAssertTrue(allowed.lines.allSatisfy { !$0.contains("refused") }, allowed.output)
        try db.makeAllDue()
        XCTAssertEqual(try db.deliver().stderr, "")
    }
}
