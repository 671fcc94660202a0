import Foundation
import XCTest

/// Per-endpoint retry schedules and jitter (issue 22), through the programs, on either backend
/// (KEYSAT_TEST_BACKEND): the times a failing delivery gets, the end of its schedule, and what
/// the operator's commands say and refuse.
final class RetryScheduleTests: XCTestCase {
    /// Seconds from the end of attempt `attempt` of `id` to the row's next attempt.
    private func delayAfter(_ attempt: Int, of id: String, in db: TestDatabase) throws -> Double {
        let history = try XCTUnwrap(
            SQL.rows(
                db.path,
                "SELECT started_at, duration_ms FROM webhook_delivery_attempts WHERE delivery_id = '\(id)' AND attempt_number = \(attempt)"
            ).first)
        let end = try epochSeconds(history["started_at"]) + Double(history["duration_ms"] as? Int ?? 0) / 1000
        return try epochSeconds(db.row(id)["next_attempt_at"]) - end
    }

    private func update(_ db: TestDatabase, _ id: String, _ arguments: [String]) throws -> ProcessResult {
        try runTool("keysat-webhooks", ["endpoint", "update", id] + arguments + ["--db", db.path])
    }

    /// The Standard Webhooks example, as its specification lists it: immediately, then 5 s,
    /// 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h; the 10th failure dead-letters.
    func testTheStandardScheduleGivesTheSpecificationsTimesThenDeadLetters() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint(on: receiver, path: "/status/500")
        XCTAssertEqual(try update(db, endpoint, ["--retry-schedule", "standard"]).status, 0)
        let id = try XCTUnwrap(db.enqueue(["license.revoked", "{}"]).lines.first)
        let published: [Double] = [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600]
        for attempt in 1...10 {
            let result = try db.deliver()
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(try db.row(id)["attempt_count"] as? Int, attempt)
            if attempt < 10 {
                XCTAssertEqual(try delayAfter(attempt, of: id, in: db), published[attempt - 1], accuracy: 0.2, "attempt \(attempt)")
                try db.makeAllDue()
            } else {
                XCTAssertTrue(try db.row(id)["next_attempt_at"] is NSNull, "dead after the 10th failure")
                XCTAssertTrue(result.stderr.contains("delivery dead-lettered"), result.stderr)
            }
        }
        XCTAssertEqual(try receiver.requests().count, 10)
    }

    /// An explicit list: its delays, each spread within ±jitter % (never the same for all),
    /// and dead at the failure after the last; no jitter by default (the exact times above and
    /// Keysat's ladder, `DeliverTests.testTheFullBackoffLadderEndsInOneDeadLetterWarning`).
    func testAnExplicitListWithJitterSpreadsRetriesWithinBoundsThenDeadLetters() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint(on: receiver, path: "/status/503")
        XCTAssertEqual(try update(db, endpoint, ["--retry-schedule", "10s,1h", "--retry-jitter", "50"]).status, 0)
        var ids: [String] = []
        for index in 0..<30 { ids += try db.enqueue(["license.issued", "{\"n\":\(index)}"]).lines }
        XCTAssertEqual(ids.count, 30)
        for (attempt, delay) in [(1, 10.0), (2, 3600.0)] {
            XCTAssertEqual(try db.deliver().status, 0)
            let delays = try ids.map { try delayAfter(attempt, of: $0, in: db) }
            for value in delays {
                XCTAssertGreaterThanOrEqual(value, delay * 0.5 - 0.2, "attempt \(attempt)")
                XCTAssertLessThanOrEqual(value, delay * 1.5 + 0.2, "attempt \(attempt)")
            }
            let spread = (delays.max() ?? 0) - (delays.min() ?? 0)
            XCTAssertGreaterThan(spread, delay * 0.2, "30 retries spread over ±50 %: \(delays)")
            try db.makeAllDue()
        }
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try db.count(where: "next_attempt_at IS NULL AND delivered_at IS NULL"), 30, "dead at the 3rd failure")
        XCTAssertEqual(try receiver.requests().count, 90)
    }

    /// The schedule in force when an attempt fails decides its next time: a pending delivery
    /// keeps its turn when the schedule changes (it is attempted, not dropped), and a schedule
    /// shorter than its attempts so far ends it at its next failure.
    func testChangingTheScheduleNeverLosesAPendingDelivery() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint(on: receiver, path: "/status/500")
        let id = try XCTUnwrap(db.enqueue(["license.revoked", "{}"]).lines.first)
        for _ in 1...3 {
            XCTAssertEqual(try db.deliver().status, 0)
            try db.makeAllDue()
        }
        XCTAssertEqual(try update(db, endpoint, ["--retry-schedule", "standard"]).status, 0)
        XCTAssertEqual(try db.count(where: "next_attempt_at IS NOT NULL AND delivered_at IS NULL"), 1, "still pending")
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try delayAfter(4, of: id, in: db), 2 * 3600, accuracy: 0.2, "the 4th failure's delay on the new schedule")
        try db.makeAllDue()
        XCTAssertEqual(try update(db, endpoint, ["--retry-schedule", "5s,1m"]).status, 0)
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try receiver.requests().count, 5, "attempted once more, then dead: 5 > 2 retries")
        XCTAssertTrue(try db.row(id)["next_attempt_at"] is NSNull)
        XCTAssertEqual(try db.row(id)["attempt_count"] as? Int, 5)
    }

    /// Refused with 64 before anything is written; the defaults are stored as NULL (Keysat's
    /// own rows), shown and given in JSON.
    func testBadSchedulesAreRefusedAndTheDefaultsAreKeysatsInNullColumns() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint()
        XCTAssertEqual(
            try SQL.value(db.path, "SELECT coalesce(retry_schedule, 'null') || '/' || coalesce(CAST(retry_jitter AS TEXT), 'null') FROM webhook_endpoints"),
            "null/null")
        for arguments in [
            ["--retry-schedule", "fast"], ["--retry-schedule", ""], ["--retry-schedule", "5s,,1m"],
            ["--retry-schedule", "0s"], ["--retry-schedule", "31d"], ["--retry-schedule", "-5s"],
            ["--retry-schedule", Array(repeating: "1s", count: 51).joined(separator: ",")],
            ["--retry-jitter", "101"], ["--retry-jitter", "-1"], ["--retry-jitter", "ten"],
            ["--retry-schedule", "standard", "--retry-jitter", "200"],
        ] {
            let result = try update(db, endpoint, arguments)
            XCTAssertEqual(result.status, 64, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.hasPrefix("keysat-webhooks: error: "), result.stderr)
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
            let add = try runTool(
                "keysat-webhooks", ["endpoint", "add", "http://127.0.0.1:9/other"] + arguments + ["--db", db.path])
            XCTAssertEqual(add.status, 64, "\(arguments): \(add.stderr)")
        }
        XCTAssertEqual(try db.count("webhook_endpoints"), 1, "nothing added")
        XCTAssertEqual(try SQL.value(db.path, "SELECT count(*) FROM webhook_endpoints WHERE retry_schedule IS NULL AND retry_jitter IS NULL"), "1")

        let show = try runTool("keysat-webhooks", ["endpoint", "show", endpoint, "--db", db.path])
        XCTAssertNotNil(show.output.range(of: #"\nretries: +keysat \(10 attempts over 3h 51m\)"#, options: .regularExpression), show.output)
        XCTAssertEqual(try update(db, endpoint, ["--retry-schedule", "90s, 2h,1d", "--retry-jitter", "20"]).status, 0)
        XCTAssertEqual(try SQL.value(db.path, "SELECT retry_schedule || '/' || retry_jitter FROM webhook_endpoints"), "90s,2h,1d/20")
        let json = try runTool("keysat-webhooks", ["endpoint", "show", endpoint, "--json", "--db", db.path])
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: json.stdout) as? [String: Any])
        XCTAssertEqual(object["retry_schedule"] as? String, "90s,2h,1d")
        XCTAssertEqual(object["retry_delays"] as? [Int], [90, 7200, 86_400])
        XCTAssertEqual(object["retry_jitter"] as? Int, 20)
        // Back to the defaults: NULL again.
        XCTAssertEqual(try update(db, endpoint, ["--retry-schedule", "keysat", "--retry-jitter", "0"]).status, 0)
        XCTAssertEqual(try SQL.value(db.path, "SELECT count(*) FROM webhook_endpoints WHERE retry_schedule IS NULL AND retry_jitter IS NULL"), "1")
    }

    /// A failing endpoint whose retries end long before auto-disable would fire is said by
    /// `stats`, and only then; `endpoint show` says it of the schedule.
    func testStatsSaysWhenAFailingEndpointsRetriesEndLongBeforeAutoDisable() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint(on: receiver, path: "/status/500")
        var stats = try runTool("keysat-webhooks", ["stats", "--db", db.path])
        XCTAssertFalse(stats.output.contains("note:"), "silent while nothing fails: \(stats.output)")
        _ = try db.enqueue(["license.revoked", "{}"])
        XCTAssertEqual(try db.deliver().status, 0)
        stats = try runTool("keysat-webhooks", ["stats", "--db", db.path])
        XCTAssertTrue(stats.output.contains("is failing; its retries (keysat) end after 3h 51m,\n  long before auto-disable (5d)"), stats.output)
        let json = try runTool("keysat-webhooks", ["stats", "--json", "--db", db.path])
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: json.stdout) as? [String: Any])
        let first = try XCTUnwrap((object["endpoints"] as? [[String: Any]])?.first)
        XCTAssertEqual(first["retries_end_long_before_disable"] as? Bool, true)
        XCTAssertEqual(first["retries_span_seconds"] as? Int, 13_905)
        // A schedule that lasts about as long as auto-disable waits: nothing to say.
        XCTAssertEqual(try update(db, endpoint, ["--retry-schedule", "1d,1d,1d"]).status, 0)
        stats = try runTool("keysat-webhooks", ["stats", "--db", db.path])
        XCTAssertFalse(stats.output.contains("note:"), stats.output)
        let show = try runTool("keysat-webhooks", ["endpoint", "show", endpoint, "--db", db.path])
        XCTAssertNotNil(show.output.range(of: #"\nretries: +1d,1d,1d \(4 attempts over 3d\)\n"#, options: .regularExpression), show.output)
    }

    /// Settings another program wrote that are not settings: the run uses the defaults
    /// (Keysat's ladder, no jitter), says so once per endpoint, and loses nothing; `endpoint
    /// show` says so too.
    func testUnreadableSettingsWrittenByAnotherProgramFallBackToTheDefaultsAndAreSaid() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint(on: receiver, path: "/status/500")
        try SQL.execute(db.path, "UPDATE webhook_endpoints SET retry_schedule = 'every tuesday', retry_jitter = 250")
        let ids = try db.enqueue(["license.revoked", "{}"]).lines + db.enqueue(["license.issued", "{}"]).lines
        let result = try db.deliver()
        XCTAssertEqual(result.status, 0, result.stderr)
        let warnings = result.stderr.split(separator: "\n")
        XCTAssertEqual(warnings.count, 1, result.stderr)
        XCTAssertTrue(warnings.first?.contains("endpoint settings cannot be read") == true, result.stderr)
        XCTAssertTrue(result.stderr.contains("every tuesday"), result.stderr)
        for id in ids {
            XCTAssertEqual(try delayAfter(1, of: id, in: db), 5, accuracy: 0.2, "Keysat's first delay, no jitter")
        }
        let show = try runTool("keysat-webhooks", ["endpoint", "show", endpoint, "--db", db.path])
        XCTAssertEqual(show.status, 0)
        XCTAssertTrue(show.output.contains("unreadable, defaults used"), show.output)
    }
}
