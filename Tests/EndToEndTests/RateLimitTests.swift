import Foundation
import KeysatTestSupport
import XCTest

/// Per-endpoint rate limits (issue 22), through the programs, on either backend
/// (KEYSAT_TEST_BACKEND), observed where they matter: at the receiver, by the times its
/// requests arrived. The token bucket is shared by runs (a run does not start with a full
/// bucket its predecessor just emptied) and, on PostgreSQL, by runs at once; other endpoints
/// go at full speed meanwhile; an endpoint whose next token is far is left to a later run.
final class RateLimitTests: XCTestCase {
    private func webhooks(_ db: TestDatabase, _ arguments: [String]) throws -> ProcessResult {
        try runTool("keysat-webhooks", arguments + ["--db", db.path])
    }

    /// The largest excess, over all windows of the arrival times, of requests over what a bucket
    /// of `burst` refilled at `perSecond` allows: `count - (burst + perSecond × width)`.
    private func excess(_ times: [Double], burst: Double, perSecond: Double) -> Double {
        let sorted = times.sorted()
        var worst = -Double.infinity
        for i in sorted.indices {
            for j in i..<sorted.count {
                worst = max(worst, Double(j - i + 1) - (burst + perSecond * (sorted[j] - sorted[i])))
            }
        }
        return worst
    }

    private func enqueue(_ db: TestDatabase, _ type: String, _ count: Int) throws {
        for n in 0..<count {
            XCTAssertEqual(try db.enqueue([type, "{\"n\":\(n)}"]).status, 0)
        }
    }

    private func summary(_ result: ProcessResult) throws -> [String: Any] {
        let line = try XCTUnwrap(result.lines.last, result.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    func testTheRateHoldsAcrossTwoBackToBackRunsAndOtherEndpointsGoAtFullSpeed() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let limited = try db.addEndpoint(on: receiver, path: "/status/200/limited", events: ["rate.limited"])
        let free = try db.addEndpoint(on: receiver, path: "/status/200/free", events: ["rate.free"])
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", limited, "--rate", "5/s"]).status, 0)
        try enqueue(db, "rate.limited", 20)
        try enqueue(db, "rate.free", 20)

        // The first run stops starting requests after 1 s: about 10 of the 20 go (5 at once,
        // then one every 200 ms); the second starts at once and must not begin with a burst.
        let started = Date().timeIntervalSince1970
        let first = try db.deliver(["--allow-network", "127.0.0.1", "--max-runtime", "1s", "--json"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let secondStarted = Date().timeIntervalSince1970
        let second = try db.deliver(["--allow-network", "127.0.0.1", "--json"])
        XCTAssertEqual(second.status, 0, second.stderr)

        let requests = try receiver.requests()
        let limitedTimes = requests.filter { $0.path.hasSuffix("/limited") }.map(\.receivedAt)
        let freeTimes = requests.filter { $0.path.hasSuffix("/free") }.map(\.receivedAt)
        XCTAssertEqual(limitedTimes.count, 20, "every delivery goes, at the rate")
        XCTAssertEqual(freeTimes.count, 20)
        XCTAssertEqual(try db.count(where: "delivered_at IS NULL"), 0)
        // No window holds more than the bucket and the rate over its width (one request of
        // slack for the network's jitter). A second full bucket would put 5 more in the window
        // from the first run's first request to the second run's burst.
        XCTAssertLessThanOrEqual(excess(limitedTimes, burst: 5, perSecond: 5), 1, "\(limitedTimes.map { $0 - started })")
        let secondRunSoon = limitedTimes.filter { $0 >= secondStarted && $0 < secondStarted + 0.6 }.count
        XCTAssertLessThanOrEqual(secondRunSoon, 4, "the second run starts with the bucket the first left, not a full one")
        // 20 at 5/s after a burst of 5 take at least 3 s, however the runs split them.
        let span = try XCTUnwrap(limitedTimes.max()) - XCTUnwrap(limitedTimes.min())
        XCTAssertGreaterThanOrEqual(span, 2.7)
        // The endpoint without a limit went at full speed meanwhile, in the first run.
        XCTAssertLessThan(try XCTUnwrap(freeTimes.max()) - started, 1.0, "\(freeTimes.map { $0 - started })")
        XCTAssertEqual(try summary(first)["rate_limited"] as? Int ?? -1 > 0, true, first.output)
    }

    func testAnEndpointWhoseNextTokenIsFarIsLeftToALaterRunRatherThanWaitedFor() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let slow = try db.addEndpoint(on: receiver, path: "/status/200/slow", events: ["rate.slow"])
        try db.addEndpoint(on: receiver, path: "/status/200/other", events: ["rate.other"])
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", slow, "--rate", "2/min"]).status, 0)
        try enqueue(db, "rate.slow", 5)
        try enqueue(db, "rate.other", 3)

        let started = Date()
        let run = try db.deliver(["--allow-network", "127.0.0.1", "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "the run does not sleep 30 s for the next token")
        var requests = try receiver.requests()
        XCTAssertEqual(requests.filter { $0.path.hasSuffix("/slow") }.count, 2, "the bucket's 2")
        XCTAssertEqual(requests.filter { $0.path.hasSuffix("/other") }.count, 3)
        XCTAssertEqual(try summary(run)["rate_limited"] as? Int, 3, run.output)
        // Still due, untouched: no attempt, no retry time of their own.
        XCTAssertEqual(try db.count(where: "delivered_at IS NULL AND attempt_count = 0"), 3)

        // The next run, at once: the bucket is empty (a full one per run would send 2 more).
        let again = try db.deliver(["--allow-network", "127.0.0.1", "--json"])
        XCTAssertEqual(again.status, 0, again.stderr)
        requests = try receiver.requests()
        XCTAssertEqual(requests.filter { $0.path.hasSuffix("/slow") }.count, 2)
        XCTAssertEqual(try summary(again)["rate_limited"] as? Int, 3, again.output)
        XCTAssertEqual(try db.count(where: "delivered_at IS NULL"), 3)
    }

    func testABadRateIsRefusedWithNothingWrittenAndNoRateClearsIt() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint()
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", endpoint, "--rate", "10/s"]).status, 0)
        let column = "SELECT coalesce(rate_limit, 'NULL') FROM webhook_endpoints"
        XCTAssertEqual(try SQL.value(db.path, column), "10/s")
        for bad in ["0/s", "-1/s", "5", "5/h", "5/", "/s", "1.5/s", "100001/s", "6000001/min", "five/s", "5/s/s", ""] {
            for command in [["endpoint", "update", endpoint, "--rate", bad], ["endpoint", "add", "http://127.0.0.1:9/x", "--rate", bad]] {
                let result = try webhooks(db, command)
                XCTAssertEqual(result.status, 64, "\(command): \(result.stderr)")
                XCTAssertTrue(result.stderr.hasPrefix("keysat-webhooks: error: "), result.stderr)
                XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
            }
        }
        let both = try webhooks(db, ["endpoint", "update", endpoint, "--rate", "3/s", "--no-rate"])
        XCTAssertEqual(both.status, 64, both.stderr)
        XCTAssertEqual(try db.count("webhook_endpoints"), 1)
        XCTAssertEqual(try SQL.value(db.path, column), "10/s")

        let show = try webhooks(db, ["endpoint", "show", endpoint, "--json"])
        let shown = try XCTUnwrap(JSONSerialization.jsonObject(with: show.stdout) as? [String: Any])
        XCTAssertEqual(shown["rate"] as? String, "10/s")
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", endpoint, "--rate", "300/min"]).status, 0)
        XCTAssertTrue(try webhooks(db, ["endpoint", "show", endpoint]).output.contains("300/min"))
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", endpoint, "--no-rate"]).status, 0)
        XCTAssertEqual(try SQL.value(db.path, column), "NULL")
        let cleared = try webhooks(db, ["endpoint", "show", endpoint, "--json"])
        XCTAssertTrue(cleared.output.contains(#""rate":null"#), cleared.output)
    }

    func testARateAnotherProgramWroteThatIsNotOneHoldsTheEndpointAndSaysSo() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint(on: receiver, path: "/status/200")
        try SQL.execute(db.path, "UPDATE webhook_endpoints SET rate_limit = 'fast please'")
        XCTAssertEqual(try db.enqueue(["license.issued", "{}"]).status, 0)
        let run = try db.deliver(["--allow-network", "127.0.0.1"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try receiver.requests().count, 0, "not sent at full speed when the limit cannot be read")
        XCTAssertTrue(run.stderr.contains("rate_limit"), run.stderr)
        XCTAssertEqual(try db.count(where: "delivered_at IS NULL AND attempt_count = 0"), 1)
        let show = try webhooks(db, ["endpoint", "show", endpoint])
        XCTAssertTrue(show.output.contains("unreadable"), show.output)
        // Repaired by update: sent.
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", endpoint, "--rate", "1/s"]).status, 0)
        XCTAssertEqual(try db.deliver(["--allow-network", "127.0.0.1"]).status, 0)
        XCTAssertEqual(try receiver.requests().count, 1)
    }

    func testARetryAfterStillWinsOverTheRate() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint(on: receiver, path: "/retryafter/8/429")
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", endpoint, "--rate", "100/s"]).status, 0)
        let id = try XCTUnwrap(db.enqueue(["license.issued", "{}"]).lines.first)
        let before = Date().timeIntervalSince1970
        XCTAssertEqual(try db.deliver(["--allow-network", "127.0.0.1"]).status, 0)
        let next = try epochSeconds(db.row(id)["next_attempt_at"])
        // 8 s: the receiver's wish (later than the 5 s backoff, within its cap), not the next token.
        XCTAssertGreaterThanOrEqual(next - before, 7.9)
        XCTAssertLessThan(next - before, 12)
    }

    func testAnOrderedEndpointsChainWaitsForItsTokensAndKeepsItsOrder() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint(on: receiver, path: "/status/204")
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", endpoint, "--ordered", "--rate", "4/s"]).status, 0)
        var ids: [String] = []
        for n in 0..<8 { ids += try db.enqueue(["license.updated", "{\"n\":\(n)}"]).lines }
        XCTAssertEqual(try db.deliver(["--allow-network", "127.0.0.1"]).status, 0)
        let requests = try receiver.requests()
        XCTAssertEqual(requests.map(\.deliveryID), ids, "all in one run, oldest first, the chain resumed after each wait")
        XCTAssertLessThanOrEqual(excess(requests.map(\.receivedAt), burst: 4, perSecond: 4), 1)
    }

    /// Two runs at once (PostgreSQL: runs on several hosts share the queue; SQLite: the second
    /// run finds the lock and ends) take from one bucket.
    func testTwoRunsAtOnceShareOneBucket() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint(on: receiver, path: "/status/200")
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", endpoint, "--rate", "4/s"]).status, 0)
        try enqueue(db, "license.issued", 24)
        let runs = try (0..<2).map { _ in try db.startDeliver(["--max-runtime", "2s"]) }
        for run in runs { run.waitUntilExit() }
        for run in runs { XCTAssertEqual(run.terminationStatus, 0) }
        let times = try receiver.requests().map(\.receivedAt)
        // About 4 + 4 × 2 = 12 in all; a bucket per run would give twice that.
        XCTAssertGreaterThanOrEqual(times.count, 8)
        XCTAssertLessThanOrEqual(times.count, 14)
        XCTAssertLessThanOrEqual(excess(times, burst: 4, perSecond: 4), 1, "\(times.sorted())")
        XCTAssertEqual(try db.count(where: "delivered_at IS NULL"), 24 - times.count)
    }
}
