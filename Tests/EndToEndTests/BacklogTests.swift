import Foundation
import XCTest

/// What a backlog and a killer do to a run (issue 12, classes 4 and 5): memory bounded by bytes
/// whatever the payloads' size, and progress recorded however often a run is killed.
final class BacklogTests: XCTestCase {
    /// Copies the one delivery of the database `count - 1` times, with the payload replaced by
    /// a JSON string of `payloadBytes` bytes (sqlite3, so that the test does not wait for
    /// thousands of enqueues).
    private func multiply(_ db: TestDatabase, to count: Int, payloadBytes: Int? = nil) throws {
        let payload =
            payloadBytes.map { "'{\"data\":\"' || \(SQL.repeated(db.path, "a", $0 / 2 * 2)) || '\"}'" }
            ?? "payload_json"
        try SQL.execute(
            db.path,
            """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(count - 1))
            INSERT INTO webhook_deliveries (id, endpoint_id, event_type, payload_json, attempt_count, next_attempt_at, created_at)
            SELECT \(SQL.randomID(db.path)), endpoint_id, event_type, \(payload), 0, next_attempt_at, created_at
            FROM webhook_deliveries, n;
            UPDATE webhook_deliveries SET payload_json = \(payload);
            """)
    }

    /// keysat-deliver's peak resident memory (KiB), read by Python from the child's rusage.
    private func peakRSS(_ arguments: [String]) throws -> (ProcessResult, Int) {
        let script = """
            import resource, subprocess, sys
            r = subprocess.run(sys.argv[1:])
            print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
            """
        let result = try runTool(
            "/usr/bin/env", ["python3", "-c", script, Binaries.path("keysat-deliver")] + arguments)
        let fields = result.output.split(separator: " ").map {
            String($0).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return (result, Int(fields.last ?? "") ?? -1)
    }

    func testPeakMemoryStaysBoundedWithALargePayloadBacklog() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        // A receiver that is failing: every attempt is made and answered 500 (no breaker).
        try db.addEndpoint(on: receiver, path: "/status/500")
        _ = try db.enqueue(["license.issued", "{}"])
        try multiply(db, to: 200, payloadBytes: 1 << 20)
        let (run, kib) = try peakRSS(["--db", db.path, "--concurrency", "32"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try db.count(where: "attempt_count = 1"), 200, "every delivery was attempted")
        print("peak RSS, 200 due deliveries of 1 MiB to a failing receiver: \(kib / 1024) MiB")
        XCTAssertLessThan(kib, 64 * 1024, "peak RSS \(kib) KiB with 200 MiB of due payloads")
        XCTAssertGreaterThan(kib, 0)
    }

    func testRepeatedKillsStillRecordProgress() throws {
        let seed = UInt64(ProcessInfo.processInfo.environment["KEYSAT_CHAOS_SEED"] ?? "") ?? 20_261_201
        var random = ChaosTests.SeededGenerator(state: seed)
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/slow/2/204")
        _ = try db.enqueue(["license.issued", #"{"n":1}"#])
        let total = 5000
        try multiply(db, to: total)
        // A run on PostgreSQL spends its first tens of milliseconds connecting, twice (the run's
        // session and the recorder's: libpq loaded, SCRAM authentication, the schema read),
        // which a run on SQLite does not: the kills land that much later there, measured as a
        // whole run that sends one delivery and records it (a dry run opened one session only,
        // and 9 of 34 kills came before a first commit, in CI).
        var connecting: UInt32 = 0
        if onPostgreSQL {
            let started = Date()
            XCTAssertEqual(try db.deliver(["--limit", "1"]).status, 0)
            connecting = UInt32(Date().timeIntervalSince(started) * 1_000_000)
        }
        var kills = 0
        var delivered: [Int] = []
        for _ in 0..<60 {
            let run = try db.startDeliver(["--concurrency", "8"])
            usleep(connecting + UInt32.random(in: 50_000...650_000, using: &random))
            guard run.isRunning else {
                run.waitUntilExit()
                break
            }
            kill(run.processIdentifier, SIGKILL)
            run.waitUntilExit()
            // On PostgreSQL the killed run's claims hold the endpoint's in-flight slots until
            // their leases end: ended here at once, standing for the lease's time passing.
            try SQL.endLeases(db.path)
            kills += 1
            delivered.append(try db.count(where: "delivered_at IS NOT NULL"))
        }
        // A killed run recorded what it sent: progress after nearly every kill. (A kill in the
        // first tens of milliseconds, on a loaded machine, can come before the run sent anything;
        // with commits once a second, 59 of 60 kills recorded nothing.)
        let stalled = zip(delivered, delivered.dropFirst()).filter { $0 == $1 && $1 < total }.count
        XCTAssertLessThanOrEqual(stalled, max(1, kills / 4), "no progress between kills: \(delivered)")
        let drain = try db.deliver()
        XCTAssertEqual(drain.status, 0, drain.stderr)
        XCTAssertEqual(try db.count(where: "delivered_at IS NOT NULL"), total)
        let requests = try receiver.requests().count
        let ratio = Double(requests) / Double(total)
        print(
            "requests per delivery after \(kills) SIGKILLs (seed \(seed)): \(String(format: "%.3f", ratio)) (\(requests) for \(total))"
        )
        XCTAssertGreaterThanOrEqual(requests, total)
        XCTAssertLessThanOrEqual(
            ratio, 1.5,
            "\(requests) requests for \(total) deliveries, delivered after each kill: \(delivered)")
    }
}
