import Foundation
import XCTest

/// keysat-enqueue --kick: events reach the receiver without waiting for the timer.
final class KickTests: XCTestCase {
    func testAKickDuringARunIsServedByAnExtraRound() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/slow/400/204")
        for i in 0..<4 { _ = try db.enqueue(["e", "\(i)"]) }
        let output = scratch.file("run.json")
        let run = try db.startDeliver(["--concurrency", "1", "--json"], stdout: output)
        usleep(300_000)
        // While the run is busy with the first four, a new event is queued and kicked.
        let late = try XCTUnwrap(db.enqueue(["--kick", "e", "\"late\""]).lines.first)
        run.waitUntilExit()
        XCTAssertEqual(run.terminationStatus, 0)
        let summary = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output)))
                as? [String: Any])
        XCTAssertEqual(summary["rounds"] as? Int, 2, "\(summary)")
        XCTAssertEqual(summary["delivered"] as? Int, 5)
        XCTAssertEqual(
            try receiver.requests().map(\.deliveryID).last, late, "delivered by the same run, not the timer")
        // Without a kick, a run makes one round.
        _ = try db.enqueue(["e", "\"quiet\""])
        let quiet = try db.deliver(["--json"])
        XCTAssertEqual(
            (try JSONSerialization.jsonObject(with: quiet.stdout) as? [String: Any])?["rounds"] as? Int, 1)
    }

    func testSpawnReturnsAtOnceAndTheEventArrivesWithoutATimer() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/slow/800/204")
        let marker = scratch.file("inherited.txt")
        // Descriptor 7 is open in the caller: the spawned run must not inherit it.
        let script = "exec 7>\"$3\"; exec \"$1\" --db \"$2\" --kick=spawn license.issued '{\"n\":1}'"
        let started = Date()
        let result = try runTool(
            "/bin/sh", ["-c", script, "sh", Binaries.path("keysat-enqueue"), db.path, marker])
        let returned = Date().timeIntervalSince(started)
        XCTAssertEqual(result.status, 0, result.stderr)
        let id = try XCTUnwrap(result.lines.first)
        XCTAssertLessThan(returned, 0.6, "enqueue does not wait for the delivery")
        // The spawned run is busy with the slow receiver: look at its descriptors meanwhile.
        usleep(300_000)
        let pid = try XCTUnwrap(spawnedRun(on: db.path), "a keysat-deliver run was started")
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")
        for fd in descriptors {
            let target =
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")) ?? ""
            XCTAssertFalse(target.hasSuffix("inherited.txt"), "descriptor \(fd) was inherited")
            if ["0", "1", "2"].contains(fd) { XCTAssertEqual(target, "/dev/null") }
        }
        let sessions = try runTool("/bin/ps", ["-o", "sid=,pid=", "-p", pid]).output.split(whereSeparator: {
            $0 == " " || $0 == "\n"
        }).map(String.init)
        XCTAssertEqual(sessions.first, sessions.last, "the run leads a session of its own")
        let deadline = Date().addingTimeInterval(10)
        while try db.row(id)["delivered_at"] is NSNull, Date() < deadline { usleep(50_000) }
        XCTAssertTrue(try db.row(id)["delivered_at"] is String)
        XCTAssertEqual(try receiver.requests().map(\.deliveryID), [id])
        // keysat-enqueue has exited: the run it started belongs to init, which reaps it. No process
        // of ours is left holding an unreaped keysat child.
        let zombies = try runTool("/bin/ps", ["-eo", "ppid=,stat=,args="]).lines
            .map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
            .filter { $0.count > 2 && $0[1].hasPrefix("Z") && $0[2].contains("keysat") && $0[0] != "1" }
        XCTAssertEqual(zombies, [])
    }

    /// The process id of the keysat-deliver run `--kick=spawn` started for `database`: on
    /// SQLite its command line names the database; on PostgreSQL the location is in its
    /// environment only (`KEYSAT_DB`: it may hold a password), its command line `--linger 1`.
    private func spawnedRun(on database: String) throws -> String? {
        let deliver = Binaries.path("keysat-deliver")
        guard onPostgreSQL else {
            let pids = try runTool(
                "/usr/bin/pgrep", ["-f", "^" + NSRegularExpression.escapedPattern(for: deliver + " --db " + database)])
            return pids.lines.first
        }
        let pids = try runTool("/usr/bin/pgrep", ["-x", "keysat-deliver"]).lines
        return pids.first { pid in
            let read = { (name: String) in
                (FileManager.default.contents(atPath: "/proc/\(pid)/\(name)") ?? Data()).split(separator: 0)
                    .map { String(decoding: $0, as: UTF8.self) }
            }
            return read("cmdline") == [deliver, "--linger", "1"] && read("environ").contains("KEYSAT_DB=" + database)
        }
    }

    func testConcurrentKicksNeverOverlapAndLoseNothing() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/slow/20/204")
        let script = """
            for i in $(seq 40); do "$1" --db "$2" --kick=spawn e "$i" > /dev/null & done; wait
            """
        let result = try runTool("/bin/sh", ["-c", script, "sh", Binaries.path("keysat-enqueue"), db.path])
        XCTAssertEqual(result.status, 0, result.stderr)
        let deadline = Date().addingTimeInterval(15)
        while try db.count(where: "delivered_at IS NOT NULL") < 40, Date() < deadline { usleep(100_000) }
        XCTAssertEqual(
            try db.count(where: "delivered_at IS NOT NULL"), 40, "every kicked event arrived without a timer")
        let ids = try receiver.requests().map(\.deliveryID)
        XCTAssertEqual(ids.count, 40, "runs never overlapped: each delivery was sent once")
        XCTAssertEqual(Set(ids).count, 40)
        XCTAssertEqual(try db.count("webhook_delivery_attempts"), 40)
    }

    func testABurstOfKickedEventsMakesAHandfulOfRunsNotOnePerEvent() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/204")
        // keysat-enqueue starts the keysat-deliver beside it: here, one that counts its starts.
        // The program is copied, and keysat-enqueue linked to it, as the package installs them.
        let bin = scratch.file("bin")
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: Binaries.path("keysat-webhooks"), toPath: bin + "/keysat-webhooks")
        try FileManager.default.createSymbolicLink(
            atPath: bin + "/keysat-enqueue", withDestinationPath: "keysat-webhooks")
        _ = try scratch.write(
            "bin/keysat-deliver",
            "#!/bin/sh\necho run >> \"\(scratch.file("runs.log"))\"\nexec \"\(Binaries.path("keysat-deliver"))\" \"$@\"\n",
            mode: 0o755)
        let script =
            "for i in $(seq 150); do \"$1\" --db \"$2\" --kick=spawn e $i > /dev/null || exit 1; done"
        XCTAssertEqual(
            try runTool("/bin/sh", ["-c", script, "sh", bin + "/keysat-enqueue", db.path]).status, 0)
        let deadline = Date().addingTimeInterval(10)
        while try db.count(where: "delivered_at IS NOT NULL") < 150, Date() < deadline { usleep(50_000) }
        XCTAssertEqual(try db.count(where: "delivered_at IS NOT NULL"), 150)
        let runs = try String(contentsOfFile: scratch.file("runs.log"), encoding: .utf8).split(
            separator: "\n"
        ).count
        XCTAssertLessThanOrEqual(runs, 5, "150 kicked events started \(runs) runs")
        XCTAssertEqual(Set(try receiver.requests().map(\.deliveryID)).count, 150)
    }

    func testKickOptionsAndEnvironment() throws {
        try requireSQLite("the kick file beside the database (PostgreSQL's signal is NOTIFY)")
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()
        XCTAssertEqual(try db.enqueue(["--kick=sometimes", "e", "1"]).status, 64)
        XCTAssertEqual(
            try runTool("keysat-enqueue", ["--db", db.path, "e", "1"], environment: ["KEYSAT_KICK": "bogus"])
                .status, 64)
        XCTAssertEqual(try db.count(), 0, "bad options write nothing")
        let kickFile = scratch.file("custom.kick")
        XCTAssertEqual(
            try runTool(
                "keysat-enqueue", ["--db", db.path, "--kick-file", kickFile, "e", "1"],
                environment: ["KEYSAT_KICK": "1"]
            ).status, 0)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: kickFile)[.size] as? Int, 1)
        XCTAssertEqual(
            try FileManager.default.attributesOfItem(atPath: kickFile)[.posixPermissions] as? Int, 0o600)
        XCTAssertEqual(try db.enqueue(["--kick", "e", "2"]).status, 0)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: db.path + ".kick")[.size] as? Int, 1)
        // A run empties the kick file, so it never grows for long.
        XCTAssertEqual(try db.deliver(["--timeout", "1"]).status, 0)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: db.path + ".kick")[.size] as? Int, 0)
    }
}
