import Foundation
import XCTest

/// Time limits that cannot become "none" (issue 20: `--timeout 0.0001` became 0, which libcurl
/// reads as no limit, and a run against a hanging receiver ignored SIGTERM for minutes). The
/// durations' clock (monotonic, not the wall clock) is tested with a stepping clock in
/// KeysatDeliveryTests/SteppedClockTests.
final class TimeLimitTests: XCTestCase {
    // MARK: - Time limits

    func testTimeLimitsBelowAMillisecondAreRefused() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint()
        let before = try SQL.dump(db.path)
        for option in ["--timeout", "--connect-timeout", "--max-runtime"] {
            for value in ["0.0001", "0", "0s"] {
                let run = try db.deliver([option, value])
                XCTAssertEqual(run.status, 64, "\(option) \(value): \(run.stderr)")
                XCTAssertTrue(run.stderr.contains("'\(option)' must be a duration of at least 1ms"), run.stderr)
            }
        }
        let test = try runTool(
            "keysat-webhooks", ["endpoint", "test", endpoint, "--timeout", "0.0001", "--db", db.path])
        XCTAssertEqual(test.status, 64, test.stderr)
        XCTAssertTrue(test.stderr.contains("at least 1ms"), test.stderr)
        // Where zero means something, it is taken.
        for (option, value) in [("--linger", "0"), ("--wait", "0"), ("--disable-after", "0"), ("--timeout", "0.001")] {
            let run = try db.deliver([option, value])
            XCTAssertEqual(run.status, 0, "\(option) \(value): \(run.stderr)")
        }
        XCTAssertEqual(try db.deliver(["--disable-after", "0.5"]).status, 64, "at least a second")
        XCTAssertEqual(try SQL.dump(db.path), before)
    }

    /// SIGTERM with a request in flight to a receiver that never answers: the run ends within
    /// its own time limit, and the delivery stays due.
    func testSigtermEndsARunWithinItsTimeout() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/hang")
        XCTAssertEqual(try db.enqueue(["license.issued", "{}"]).status, 0)
        let run = try db.startDeliver(["--timeout", "2"])
        usleep(700_000)
        let signalled = Date()
        run.terminate()
        run.waitUntilExit()
        XCTAssertLessThan(Date().timeIntervalSince(signalled), 5)
        XCTAssertEqual(try db.count(where: "delivered_at IS NULL AND next_attempt_at IS NOT NULL"), 1)
    }
}
