import Foundation
import XCTest

/// Bounded runs: per-endpoint caps, the circuit breaker, ordered endpoints, time budgets,
/// signals, first attempts before retries, Retry-After.
final class FlowControlTests: XCTestCase {
    private func summary(_ result: ProcessResult) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: result.stdout) as? [String: Any], result.stderr)
    }

    func testTheBreakerOpensAfterKFailuresAndLeavesTheRestUntouched() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let hanging = try db.addEndpoint(on: receiver, path: "/hang", events: ["slow"])
        try db.addEndpoint(on: receiver, path: "/status/204", events: ["fast"])
        for i in 0..<10 { _ = try db.enqueue(["slow", "\(i)"]) }
        for i in 0..<10 { _ = try db.enqueue(["fast", "\(i)"]) }
        let before = try SQL.rows(
            db.path, "SELECT id, next_attempt_at FROM webhook_deliveries WHERE event_type = 'slow'")
        let result = try db.deliver(["--timeout", "1", "--per-endpoint", "3", "--breaker", "3", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let counts = try summary(result)
        XCTAssertEqual(counts["skipped"] as? Int, 7)
        XCTAssertEqual(counts["delivered"] as? Int, 10)
        let perEndpoint = try XCTUnwrap((counts["endpoints"] as? [String: [String: Int]])?[hanging])
        XCTAssertEqual(perEndpoint["attempted"], 3)
        XCTAssertEqual(perEndpoint["retry_scheduled"], 3)
        XCTAssertEqual(perEndpoint["skipped"], 7)
        XCTAssertEqual(
            try receiver.requests().filter { $0.path == "/hang" }.count, 3,
            "one timeout per slot, not per delivery")
        // The skipped rows are exactly as they were.
        let untouched = try SQL.rows(
            db.path,
            "SELECT id, next_attempt_at FROM webhook_deliveries WHERE event_type = 'slow' AND attempt_count = 0"
        )
        XCTAssertEqual(untouched.count, 7)
        let original = Dictionary(
            uniqueKeysWithValues: before.map { ($0["id"] as! String, $0["next_attempt_at"] as! String) })
        for row in untouched {
            XCTAssertEqual(row["next_attempt_at"] as? String, original[row["id"] as! String])
        }
        XCTAssertEqual(try db.count("webhook_delivery_attempts"), 13)
    }

    func testThePerEndpointCapIsObservedByTheReceiver() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/slow/150/204/capped", events: ["a"])
        try db.addEndpoint(on: receiver, path: "/slow/150/204/other", events: ["b"])
        for i in 0..<12 { _ = try db.enqueue(["a", "\(i)"]) }
        for i in 0..<4 { _ = try db.enqueue(["b", "\(i)"]) }
        let result = try db.deliver(["--per-endpoint", "2", "--concurrency", "16"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let requests = try receiver.requests()
        XCTAssertEqual(requests.count, 16)
        // Concurrency at the receiver, counted from the arrival times and the known 150 ms service time.
        func peak(_ suffix: String) -> Int {
            let times = requests.filter { $0.path.hasSuffix(suffix) }.map(\.receivedAt).sorted()
            return times.indices.map { i in times.filter { $0 >= times[i] && $0 < times[i] + 0.14 }.count }
                .max() ?? 0
        }
        XCTAssertLessThanOrEqual(peak("/capped"), 2)
        XCTAssertEqual(peak("/capped"), 2, "the cap is used")
        XCTAssertGreaterThanOrEqual(peak("/other"), 2, "the other endpoint is not held up")
    }

    func testAnOrderedEndpointGetsOneAtATimeOldestFirstAndAFailureHoldsTheRest() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let add = try runTool(
            "keysat-webhooks",
            ["endpoint", "add", receiver.url("/status/500"), "--ordered", "--json", "--db", db.path])
        XCTAssertEqual(add.status, 0, add.stderr)
        let endpoint = try XCTUnwrap(
            (JSONSerialization.jsonObject(with: add.stdout) as? [String: Any])?["id"] as? String)
        var ids: [String] = []
        for i in 0..<5 { ids += try db.enqueue(["license.updated", "{\"seq\":\(i)}"]).lines }
        // The oldest fails: it alone is attempted, the newer ones wait untouched.
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try receiver.requests().map(\.deliveryID), [ids[0]])
        XCTAssertEqual(try db.count(where: "attempt_count = 0"), 4)
        // Even when the newer ones are due and the older is not, they are held back.
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try receiver.requests().count, 1)
        // The receiver recovers: everything goes, one at a time, in order.
        XCTAssertEqual(
            try runTool(
                "keysat-webhooks",
                ["endpoint", "update", endpoint, "--url", receiver.url("/slow/30/204"), "--db", db.path]
            ).status, 0)
        try db.makeAllDue()
        XCTAssertEqual(try db.deliver(["--concurrency", "8"]).status, 0)
        let delivered = try receiver.requests().dropFirst()
        XCTAssertEqual(delivered.map(\.deliveryID), ids)
        XCTAssertEqual(delivered.map(\.activeRequests).max(), 1, "never two in flight")
        XCTAssertEqual(try db.count(where: "delivered_at IS NOT NULL"), 5)
        XCTAssertTrue(
            try runTool("keysat-webhooks", ["endpoint", "show", endpoint, "--db", db.path]).output.range(
                of: #"\nordered: +yes"#, options: .regularExpression) != nil)
    }

    func testMaxRuntimeStopsStartingAttemptsAndRecordsTheRest() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/slow/300/204")
        for i in 0..<30 { _ = try db.enqueue(["e", "\(i)"]) }
        let result = try db.deliver(["--max-runtime", "1", "--concurrency", "2", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let counts = try summary(result)
        XCTAssertEqual(counts["stopped_by"] as? String, "max-runtime")
        let attempted = try XCTUnwrap(counts["attempted"] as? Int)
        XCTAssertGreaterThan(attempted, 2)
        XCTAssertLessThan(attempted, 30)
        XCTAssertEqual(
            try db.count(where: "delivered_at IS NOT NULL"), attempted, "every attempt started was recorded")
        XCTAssertEqual(try receiver.requests().count, attempted)
        XCTAssertEqual(
            try db.count(where: "attempt_count = 0 AND next_attempt_at IS NOT NULL"), 30 - attempted,
            "the rest stay due")
        if onPostgreSQL {
            XCTAssertEqual(try db.count(where: "claim_token IS NOT NULL"), 0, "claims taken ahead are handed back")
        }
        XCTAssertEqual(try db.deliver().status, 0, "the lock was released")
        XCTAssertEqual(try db.count(where: "delivered_at IS NOT NULL"), 30)
    }

    func testSIGTERMFinishesInFlightAttemptsRecordsThemAndReleasesTheLock() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/slow/400/204")
        for i in 0..<40 { _ = try db.enqueue(["e", "\(i)"]) }
        let run = try db.startDeliver(["--concurrency", "4"])
        usleep(600_000)
        kill(run.processIdentifier, SIGTERM)
        let signalled = Date()
        run.waitUntilExit()
        XCTAssertEqual(run.terminationReason, .exit)
        XCTAssertEqual(run.terminationStatus, 0)
        XCTAssertLessThan(
            Date().timeIntervalSince(signalled), 2, "in-flight attempts finish, nothing new starts")
        let delivered = try db.count(where: "delivered_at IS NOT NULL")
        XCTAssertGreaterThan(delivered, 0)
        XCTAssertLessThan(delivered, 40)
        XCTAssertEqual(try receiver.requests().count, delivered, "every request sent was recorded")
        XCTAssertEqual(
            try db.count(where: "delivered_at IS NULL AND (attempt_count != 0 OR next_attempt_at IS NULL)"),
            0, "none half-written")
        if onPostgreSQL {
            XCTAssertEqual(try db.count(where: "claim_token IS NOT NULL"), 0, "claims taken ahead are handed back")
        }
        XCTAssertEqual(
            onPostgreSQL ? 0 : try runTool("/usr/bin/flock", ["-n", db.path + ".deliver.lock", "true"]).status, 0,
            "lock released")
    }

    func testASecondSignalExitsAtOnceAndNothingIsLost() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/slow/3000/204")
        for i in 0..<6 { _ = try db.enqueue(["e", "\(i)"]) }
        let run = try db.startDeliver(["--concurrency", "4"])
        usleep(500_000)
        kill(run.processIdentifier, SIGTERM)
        usleep(300_000)
        kill(run.processIdentifier, SIGTERM)
        let started = Date()
        run.waitUntilExit()
        XCTAssertLessThan(
            Date().timeIntervalSince(started), 1.5, "the second signal does not wait for the receiver")
        XCTAssertEqual(run.terminationReason, .uncaughtSignal)
        // Nothing was recorded for the abandoned attempts: all six are still due and go next run.
        XCTAssertEqual(try db.count(where: "attempt_count = 0 AND next_attempt_at IS NOT NULL"), 6)
        if !onPostgreSQL {  // SQLite's run lock
            XCTAssertEqual(try runTool("/usr/bin/flock", ["-n", db.path + ".deliver.lock", "true"]).status, 0)
        }
    }

    func testFirstAttemptsGoBeforeRetries() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/204")
        let retries = try (0..<5).flatMap { try db.enqueue(["e", "\($0)"]).lines }
        // Five old retries, due long ago...
        try SQL.execute(
            db.path,
            "UPDATE webhook_deliveries SET attempt_count = 3, next_attempt_at = '2020-01-01T00:00:00.000000+00:00'"
        )
        // ...and five fresh events.
        let fresh = try (0..<5).flatMap { try db.enqueue(["e", "\"new-\($0)\""]).lines }
        XCTAssertEqual(try db.deliver(["--limit", "5", "--concurrency", "1"]).status, 0)
        XCTAssertEqual(try receiver.requests().map(\.deliveryID), fresh)
        XCTAssertEqual(try db.deliver(["--concurrency", "1"]).status, 0)
        // The retries share one next_attempt_at: then the order they were written in decides.
        XCTAssertEqual(try receiver.requests().dropFirst(5).map(\.deliveryID), retries)
        XCTAssertEqual(try db.deliver(["--dry-run"]).output, "")
    }

    func testRetryAfterIsHonouredButCapped() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let cases: [(path: String, delay: Double)] = [
            ("/retryafter/8/503", 8),  // later than the 5 s backoff: honoured
            ("/retryafter/3600/429", 10),  // capped at twice the backoff
            ("/retryafter/2/503", 5),  // earlier than the backoff: the backoff stands
            ("/retryafter/8/500", 5),  // only 429 and 503 count
        ]
        var ids: [String: String] = [:]
        for item in cases {
            let event = "e" + String(ids.count)
            try db.addEndpoint(on: receiver, path: item.path, events: [event])
            ids[item.path] = try XCTUnwrap(db.enqueue([event, "{}"]).lines.first)
        }
        XCTAssertEqual(try db.deliver().status, 0)
        for item in cases {
            let id = ids[item.path]!
            let attempt = try XCTUnwrap(
                SQL.rows(
                    db.path,
                    "SELECT started_at, duration_ms FROM webhook_delivery_attempts WHERE delivery_id = '\(id)'"
                ).first)
            let end =
                try epochSeconds(attempt["started_at"]) + Double(attempt["duration_ms"] as? Int ?? 0) / 1000
            XCTAssertEqual(
                try epochSeconds(db.row(id)["next_attempt_at"]) - end, item.delay, accuracy: 1.1, item.path)
        }
    }
}
