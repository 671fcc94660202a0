import Foundation
import XCTest

/// Values from outside never trap: extreme header values given to `verify`, extreme durations
/// on every program's command line, and extreme numbers in rows another program wrote
/// (issue 12, class 3).
final class ExtremeValueTests: XCTestCase {
    func testVerifyAnswersExtremeTimestampsWithExitOne() throws {
        let scratch = try Scratch()
        let secretFile = try scratch.write("secret", "0123456789abcdef0123456789abcdef\n", mode: 0o600)
        let body = try scratch.write("body", "{}")
        for timestamp in ["-9223372036854775808", "9223372036854775807", "-1", "184467440737095516160"] {
            let result = try runTool(
                "keysat-webhooks",
                [
                    "verify", "--secret-file", secretFile, "--header", "webhook-id: msg_1",
                    "--header", "webhook-timestamp: \(timestamp)", "--header", "webhook-signature: v1,AAAA",
                    body,
                ])
            XCTAssertEqual(result.status, 1, "\(timestamp): \(result.stderr)")
            XCTAssertTrue(result.stderr.hasPrefix("keysat-webhooks: "), result.stderr)
        }
        for tolerance in ["9223372036854775807", "-1", "1e999", "99999999999999d"] {
            let result = try runTool(
                "keysat-webhooks", ["verify", "--secret-file", secretFile, "--tolerance", tolerance, body])
            XCTAssertEqual(result.status, 64, "--tolerance \(tolerance): \(result.stderr)")
        }
    }

    func testExtremeDurationsAreRefusedWith64() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let id = try db.addEndpoint()
        let extremes = [
            "9223372036854775807", "99999999999999999999", "1e308", "106752d", "9999999999w", "inf", "nan",
            "-5",
            "0x10", "",
        ]
        for option in [
            "--timeout", "--connect-timeout", "--max-runtime", "--linger", "--wait", "--disable-after",
        ] {
            for value in extremes {
                let result = try db.deliver([option, value])
                XCTAssertEqual(result.status, 64, "keysat-deliver \(option) \(value): \(result.stderr)")
                XCTAssertTrue(result.stderr.hasPrefix("keysat-deliver: error: "), result.stderr)
            }
        }
        for value in extremes {
            for arguments in [
                ["purge", "--older-than", value], ["endpoint", "rotate-secret", id, "--grace", value],
                ["deliveries", "list", "--since", value],
                ["deliveries", "retry", "--dead", "--since", value],
            ] {
                let result = try runTool(
                    "keysat-webhooks", arguments + ["--db", db.path], stdin: Data("x".utf8))
                XCTAssertEqual(
                    result.status, 64, "keysat-webhooks \(arguments.joined(separator: " ")): \(result.stderr)"
                )
            }
        }
        // The longest durations accepted work, and do not overflow when added to now.
        XCTAssertEqual(try db.deliver(["--disable-after", "36500d", "--max-runtime", "36500d"]).status, 0)
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["purge", "--older-than", "36500d", "--db", db.path]).status, 0)
    }

    func testExtremeNumbersInRowsWrittenByAnotherProgram() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/500")
        let ids = try db.enqueue(["e", "{}"]).lines + db.enqueue(["e", "{}"]).lines
        // SQLite's integers are 64-bit and unchecked; PostgreSQL's attempt_count is an integer
        // that its schema keeps at 0 or more.
        try SQL.execute(
            db.path,
            "UPDATE webhook_deliveries SET attempt_count = \(onPostgreSQL ? "2147483647" : "9223372036854775807") WHERE id = '\(ids[0])'")
        if !onPostgreSQL {
            try SQL.execute(
                db.path,
                "UPDATE webhook_deliveries SET attempt_count = -9223372036854775808 WHERE id = '\(ids[1])'")
        }
        let run = try db.deliver()
        XCTAssertEqual(run.status, 0, run.stderr)
        for id in ids {
            let show = try runTool("keysat-webhooks", ["deliveries", "show", id, "--db", db.path])
            XCTAssertEqual(show.status, 0, show.stderr)
        }
        XCTAssertEqual(try runTool("keysat-webhooks", ["deliveries", "list", "--db", db.path]).status, 0)
        XCTAssertEqual(try runTool("keysat-webhooks", ["stats", "--db", db.path]).status, 0)
        XCTAssertEqual(try db.deliver(["--dry-run"]).status, 0)
    }
}
