import Foundation
import XCTest

/// Three keysat-deliver runs at a time on one queue (on PostgreSQL: runs on three hosts, sharing
/// the queue through claims and leases; on SQLite: runs that take turns on the lock), killed with
/// SIGKILL at seeded random moments while events keep coming, then left to finish (issue 21).
final class SharedQueueChaosTests: XCTestCase {
    private func loop(_ script: String, _ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script, "sh"] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["KEYSAT_ALLOW_NETWORKS"] = "127.0.0.1"
        environment.removeValue(forKey: "KEYSAT_DB")
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// The processes running `binary` that `loops` (shells) started, found through /proc.
    private func children(of loops: [Process], running binary: String) -> [pid_t] {
        loops.flatMap { loop -> [pid_t] in
            let pid = loop.processIdentifier
            let list = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
            return list.split(separator: " ").compactMap { pid_t($0) }.filter { child in
                let command = FileManager.default.contents(atPath: "/proc/\(child)/cmdline") ?? Data()
                return command.split(separator: 0).first.map { String(decoding: $0, as: UTF8.self) } == binary
            }
        }
    }

    func testThreeRunsKilledAtRandomLoseNothingSendOnceAndKeepAnOrderedEndpointInOrder() throws {
        let seed = UInt64(ProcessInfo.processInfo.environment["KEYSAT_CHAOS_SEED"] ?? "") ?? 20_261_206
        var random = ChaosTests.SeededGenerator(state: seed)
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/slow/4/204/a")
        try db.addEndpoint(on: receiver, path: "/slow/4/204/b")
        let added = try runTool(
            "keysat-webhooks", ["endpoint", "add", receiver.url("/slow/2/204/ordered"), "--ordered", "--db", db.path, "--json"])
        XCTAssertEqual(added.status, 0, added.stderr)
        let ordered = try XCTUnwrap((try JSONSerialization.jsonObject(with: added.stdout) as? [String: Any])?["id"] as? String)
        try receiver.expectSecret(
            try SQL.value(db.path, "SELECT secret FROM webhook_endpoints WHERE id = '\(ordered)'"), forPath: "/slow/2/204/ordered")

        let enqueue = Binaries.path("keysat-enqueue")
        let deliver = Binaries.path("keysat-deliver")
        let okLog = scratch.file("enqueued.log")
        let enqueuer = """
            i=0; while :; do i=$((i+1)); tag="$4-$i"
              "$1" --db "$2" e "{\\"tag\\":\\"$tag\\"}" > /dev/null 2>&1 && echo "$tag" >> "$3"
            done
            """
        let deliverer = "while :; do \"$1\" --db \"$2\" --concurrency 8 --timeout 2 > /dev/null 2>&1; done"
        var loops = [try loop(enqueuer, [enqueue, db.path, okLog, "w"])]
        let runs = try (0..<3).map { _ in try loop(deliverer, [deliver, db.path]) }
        loops += runs
        var kills: [Double] = []
        for _ in 0..<20 {
            usleep(UInt32.random(in: 80_000...300_000, using: &random))
            let running = children(of: runs, running: deliver)
            guard let victim = running.randomElement(using: &random) else { continue }
            let moment = Date().timeIntervalSince1970
            if kill(victim, SIGKILL) == 0 { kills.append(moment) }
        }
        for process in loops { kill(process.processIdentifier, SIGSTOP) }
        kills.append(Date().timeIntervalSince1970)
        for pid in children(of: loops, running: deliver) + children(of: loops, running: enqueue) { kill(pid, SIGKILL) }
        for process in loops { kill(process.processIdentifier, SIGKILL) }
        for process in loops { process.waitUntilExit() }
        usleep(200_000)

        // Left to finish: the killed runs' claims end (here at once, standing for their lease's
        // time passing), then a run sends what is still due.
        try SQL.endLeases(db.path)
        XCTAssertEqual(try db.deliver(["--allow-network", "127.0.0.1"]).status, 0)
        let context = "seed \(seed), \(kills.count - 1) kills"
        XCTAssertGreaterThan(kills.count, 5, "the seed must kill runs: \(context)")
        XCTAssertEqual(try db.count(where: "delivered_at IS NULL"), 0, context)

        // Every confirmed event reached all three endpoints.
        let confirmed = Set(try String(contentsOfFile: okLog, encoding: .utf8).split(separator: "\n").map(String.init))
        XCTAssertGreaterThan(confirmed.count, 20, context)
        let requests = try receiver.requests()
        var received: [String: Set<String>] = [:]
        for request in requests {
            let body = try XCTUnwrap(JSONSerialization.jsonObject(with: request.body) as? [String: Any])
            received[(body["data"] as? [String: Any])?["tag"] as? String ?? "", default: []].insert(request.path)
        }
        for tag in confirmed { XCTAssertEqual(received[tag]?.count, 3, "event \(tag): \(context)") }
        XCTAssertTrue(requests.allSatisfy { $0.signatureOK == true }, context)

        // Sent more than once only around a kill: the killed run's attempts in flight, or done
        // and not yet recorded (outcomes are committed every 50 ms).
        var firstSeen: [String: Double] = [:]
        var counts: [String: Int] = [:]
        for request in requests {
            counts[request.deliveryID, default: 0] += 1
            firstSeen[request.deliveryID] = min(firstSeen[request.deliveryID] ?? .infinity, request.receivedAt)
        }
        for (id, count) in counts where count > 1 {
            let first = firstSeen[id]!
            XCTAssertTrue(
                kills.contains { first <= $0 + 0.1 && $0 - first < 2.5 },
                "delivery \(id) was sent \(count) times, not around a kill: \(context)")
        }

        // The ordered endpoint got its deliveries oldest first: the order of first receipt is
        // the order they were written.
        let written = try SQL.rows(
            db.path, "SELECT id FROM webhook_deliveries WHERE endpoint_id = '\(ordered)' ORDER BY \(SQL.writtenOrder(db.path))"
        ).compactMap { $0["id"] as? String }
        let firstReceipts = requests.filter { $0.path == "/slow/2/204/ordered" }
            .reduce(into: [String]()) { seen, request in
                if !seen.contains(request.deliveryID) { seen.append(request.deliveryID) }
            }
        XCTAssertEqual(firstReceipts, written, "the ordered endpoint's order: \(context)")
        // Every confirmed event, and at most one more: an enqueue stopped at the end may have
        // committed before its shell noted it.
        XCTAssertTrue((confirmed.count...confirmed.count + 1).contains(written.count), "\(written.count) written: \(context)")
    }
}
