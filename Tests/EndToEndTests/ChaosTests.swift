import Foundation
import XCTest

/// Enqueuers and keysat-deliver runs killed with SIGKILL at random moments, then a clean drain.
final class ChaosTests: XCTestCase {
    /// SplitMix64: a seeded generator, so that a failing run can be replayed with its seed.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    private func background(_ script: String, _ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script, "sh"] + arguments
        var env = ProcessInfo.processInfo.environment
        env["KEYSAT_ALLOW_NETWORKS"] = "127.0.0.1"
        process.environment = env
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// The processes `loop` (a shell) is running now that run `binary`: found through
    /// /proc/PID/task/PID/children, so that only this test's own processes are ever killed.
    private func children(of loop: Process, running binary: String) -> [pid_t] {
        let pid = loop.processIdentifier
        guard let list = try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)
        else { return [] }
        return list.split(separator: " ").compactMap { pid_t($0) }.filter { child in
            guard let command = FileManager.default.contents(atPath: "/proc/\(child)/cmdline") else {
                return false
            }
            return command.split(separator: 0).first.map { String(decoding: $0, as: UTF8.self) } == binary
        }
    }

    /// SIGKILLs what the loops are running of `binary`; returns how many processes it killed.
    @discardableResult
    private func killChildren(of loops: [Process], running binary: String) -> Int {
        var killed = 0
        for loop in loops {
            for child in children(of: loop, running: binary) where kill(child, SIGKILL) == 0 { killed += 1 }
        }
        return killed
    }

    func testKillsAtRandomMomentsLoseNothing() throws {
        let seed = UInt64(ProcessInfo.processInfo.environment["KEYSAT_CHAOS_SEED"] ?? "") ?? 20_261_129
        var random = SeededGenerator(state: seed)
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/slow/3/204/a")
        try db.addEndpoint(on: receiver, path: "/slow/3/204/b")
        let enqueue = Binaries.path("keysat-enqueue")
        let deliver = Binaries.path("keysat-deliver")
        let okLog = scratch.file("enqueued.log")
        // Each enqueuer notes an event only once keysat-enqueue said it was queued.
        let enqueuer = """
            i=0; while :; do i=$((i+1)); tag="$4-$i"
              "$1" --db "$2" e "{\\"tag\\":\\"$tag\\"}" > /dev/null 2>&1 && echo "$tag" >> "$3"
            done
            """
        let deliverer = "while :; do \"$1\" --db \"$2\" --concurrency 8 > /dev/null 2>&1; done"
        var loops = [
            try background(enqueuer, [enqueue, db.path, okLog, "w1"]),
            try background(enqueuer, [enqueue, db.path, okLog, "w2"]),
            try background(deliverer, [deliver, db.path]),
        ]
        var deliverKills: [Double] = []
        var enqueueKills = 0
        for _ in 0..<15 {
            usleep(UInt32.random(in: 100_000...400_000, using: &random))
            if Bool.random(using: &random) {
                let moment = Date().timeIntervalSince1970
                if killChildren(of: loops, running: deliver) > 0 { deliverKills.append(moment) }
            } else {
                enqueueKills += killChildren(of: loops, running: enqueue)
            }
        }
        // The loops stopped first, so that they start nothing new, then what they run, then them.
        for loop in loops { kill(loop.processIdentifier, SIGSTOP) }
        deliverKills.append(Date().timeIntervalSince1970)
        killChildren(of: loops, running: deliver)
        killChildren(of: loops, running: enqueue)
        for loop in loops { kill(loop.processIdentifier, SIGKILL) }
        for loop in loops { loop.waitUntilExit() }
        loops.removeAll()
        usleep(200_000)

        // The drain: a normal run sends whatever is still due (on PostgreSQL once the killed
        // runs' leases have ended, here at once, standing for their time passing).
        try SQL.endLeases(db.path)
        XCTAssertEqual(try db.deliver(["--concurrency", "8"]).status, 0)
        let context = "seed \(seed), \(deliverKills.count - 1) deliver kills, \(enqueueKills) enqueue kills"
        XCTAssertEqual(try SQL.integrityCheck(db.path), "ok", context)
        XCTAssertGreaterThan(deliverKills.count, 1, "the seed must kill some runs: \(context)")

        // All or nothing per event: two rows (one per endpoint) or none.
        let perEvent = try SQL.rows(
            db.path,
            "SELECT \(SQL.jsonField(db.path, "payload_json", "data.tag")) AS tag, count(*) AS n FROM webhook_deliveries GROUP BY tag"
        )
        XCTAssertTrue(
            perEvent.allSatisfy { $0["n"] as? Int == 2 }, "an event with a partial fan-out: \(context)")
        XCTAssertEqual(try db.count(where: "delivered_at IS NULL"), 0, context)

        // Every event keysat-enqueue confirmed reached both endpoints.
        let confirmed = Set(
            (try String(contentsOfFile: okLog, encoding: .utf8)).split(separator: "\n").map(String.init))
        XCTAssertGreaterThan(confirmed.count, 20, context)
        let requests = try receiver.requests()
        var received: [String: Set<String>] = [:]
        for request in requests {
            let body = try XCTUnwrap(JSONSerialization.jsonObject(with: request.body) as? [String: Any])
            let tag = (body["data"] as? [String: Any])?["tag"] as? String ?? ""
            received[tag, default: []].insert(request.path)
        }
        for tag in confirmed {
            XCTAssertEqual(received[tag]?.count, 2, "event \(tag) did not reach both endpoints: \(context)")
        }

        // Duplicates come only from work a killed run had in flight, or had done but not yet
        // recorded (outcomes are committed at least once a second).
        var firstSeen: [String: Double] = [:]
        var counts: [String: Int] = [:]
        for request in requests {
            counts[request.deliveryID, default: 0] += 1
            firstSeen[request.deliveryID] = min(
                firstSeen[request.deliveryID] ?? .infinity, request.receivedAt)
        }
        for (id, count) in counts where count > 1 {
            let first = firstSeen[id]!
            XCTAssertTrue(
                deliverKills.contains { kill in first <= kill + 0.1 && kill - first < 2.5 },
                "delivery \(id) was sent \(count) times, not around a kill: \(context)")
        }
    }
}
