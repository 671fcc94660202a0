import Foundation
import XCTest

/// A run that cannot record what it sends must not send (issue 20): found with a database on a
/// full tmpfs (three runs sent 890 requests for 347 deliveries, each saying "nothing was
/// written") and with `ulimit -n 12…48` (each run sent its window, then exited 66, "no database").
final class RecordingFailureTests: XCTestCase {
    /// Requests the receiver got, by delivery id.
    private func received(_ receiver: Receiver) throws -> [String: Int] {
        try receiver.requests().reduce(into: [:]) { $0[$1.deliveryID, default: 0] += 1 }
    }

    /// keysat-deliver run on `db` under `ulimit LIMIT` (e.g. "-n 12").
    private func deliver(_ db: TestDatabase, under limit: String) throws -> ProcessResult {
        try runTool(
            "/bin/sh", ["-c", "ulimit \(limit) && exec \"$0\" --db \"$1\"", Binaries.path("keysat-deliver"), db.path])
    }

    private func enqueue(_ db: TestDatabase, _ count: Int) throws {
        for n in 0..<count {
            XCTAssertEqual(try db.enqueue(["license.issued", #"{"n":\#(n)}"#]).status, 0)
        }
    }

    func testAFullDiskStopsTheRunBeforeItSends() throws {
        try requireSQLite("a database file on a full file system")
        guard getuid() == 0 else { throw XCTSkip("mounting a small tmpfs needs root") }
        let scratch = try Scratch()
        let mount = scratch.file("fs")
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        let mounted = try runTool("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=3m", "tmpfs", mount])
        guard mounted.status == 0 else { throw XCTSkip("cannot mount a tmpfs: \(mounted.stderr)") }
        defer { _ = try? runTool("/usr/bin/umount", ["-l", mount]) }
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch, name: "fs/keysat.db")
        try db.addEndpoint(on: receiver, path: "/status/204/full")
        try enqueue(db, 150)
        // Fill the file system, keeping 16 KiB aside to free later.
        _ = try runTool("/bin/dd", ["if=/dev/zero", "of=\(mount)/spare", "bs=4096", "count=4"])
        _ = try runTool("/bin/dd", ["if=/dev/zero", "of=\(mount)/filler", "bs=4096"])

        // Completely full: the run proves it cannot record before its first request.
        for _ in 0..<3 {
            let run = try db.deliver()
            XCTAssertEqual(run.status, 74, run.stderr)
            XCTAssertTrue(run.stderr.contains("the run sent nothing"), run.stderr)
        }
        XCTAssertEqual(try received(receiver).count, 0, "nothing sent by runs that could not record")

        // Nearly full: what was sent and not recorded is counted (and what was abandoned in
        // flight, which may or may not have arrived), and only those come again.
        try FileManager.default.removeItem(atPath: mount + "/spare")
        let partial = try db.deliver()
        let afterPartial = try received(receiver)
        let recorded = try db.count(where: "delivered_at IS NOT NULL")
        func count(before words: String) -> Int {
            guard let range = partial.stderr.range(of: words) else { return 0 }
            return Int(partial.stderr[..<range.lowerBound].split(separator: " ").last ?? "") ?? -1
        }
        var lost = 0
        var abandoned = 0
        if partial.status != 0 {
            XCTAssertEqual(partial.status, 74, partial.stderr)
            lost = count(before: " requests were sent") + count(before: " request was sent")
            abandoned = count(before: " requests were abandoned") + count(before: " request was abandoned")
        }
        let arrived = afterPartial.values.reduce(0, +)
        XCTAssertTrue(
            (recorded + lost...recorded + lost + abandoned).contains(arrived),
            "\(arrived) arrived, \(recorded) recorded: \(partial.stderr)")

        try FileManager.default.removeItem(atPath: mount + "/filler")
        let run = try db.deliver()
        XCTAssertEqual(run.status, 0, run.stderr)
        let final = try received(receiver)
        XCTAssertEqual(final.count, 150, "every delivery arrived")
        let duplicates = final.values.reduce(0, +) - 150
        XCTAssertTrue((lost...lost + abandoned).contains(duplicates), "duplicates only of what was said to be lost")
        XCTAssertEqual(try db.count(where: "delivered_at IS NULL"), 0)
    }

    /// Few file descriptors: a run exits 71 (not 66, "no database", 69, "install libssl3", 73,
    /// "choose another lock file", nor 70, "a bug"), and every
    /// request that reached the receiver is recorded.
    func testFewDescriptorsNeverSendWhatCannotBeRecorded() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/204/fd")
        try enqueue(db, 40)
        try SQL.execute(db.path, "UPDATE webhook_deliveries SET attempt_count = 9")  // one failure from dead
        var statuses: Set<Int32> = []
        for limit in stride(from: 4, through: 48, by: 2) {
            let run = try deliver(db, under: "-n \(limit)")
            statuses.insert(run.status)
            XCTAssertTrue([0, 71].contains(run.status), "ulimit -n \(limit): \(run.status) \(run.stderr)")
            let attempts = try db.count("webhook_delivery_attempts", where: "status_code IS NOT NULL")
            XCTAssertEqual(
                try received(receiver).values.reduce(0, +), attempts,
                "ulimit -n \(limit): every request that arrived is recorded")
            // A socket this host could not make is not the receiver's failure (with 10 to 13
            // descriptors, deliveries were dead-lettered as "Couldn't connect to server").
            XCTAssertEqual(
                try db.count("webhook_delivery_attempts", where: "status_code IS NULL"), 0,
                "ulimit -n \(limit): \(run.stderr)")
            try db.makeAllDue()
        }
        XCTAssertTrue(statuses.contains(71), "the smallest limits are said to be what they are: \(statuses)")
    }

    /// Little memory (`ulimit -v`): 71, never 69 ("install the libcurl4 package") or 70, and
    /// nothing sent that was not recorded.
    func testLittleMemoryIsSaidAsSuch() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/204/memory")
        try enqueue(db, 5)
        // Every 2 MB: the window between the libraries loading and the run's peak is a few MB
        // wide, and moves with the program's size (a step of 8 MB once stepped over it).
        for limit in stride(from: 16_000, through: 80_000, by: 2_000) {
            let run = try deliver(db, under: "-v \(limit)")
            // Below some limit the dynamic loader itself cannot start the program: not ours to word.
            if run.status == 127 && run.stderr.contains("error while loading shared libraries") { continue }
            XCTAssertTrue([0, 71].contains(run.status), "ulimit -v \(limit): \(run.status) \(run.stderr)")
            let attempts = try db.count("webhook_delivery_attempts", where: "status_code IS NOT NULL")
            XCTAssertEqual(try received(receiver).values.reduce(0, +), attempts, "ulimit -v \(limit)")
            try db.makeAllDue()
        }
    }
}
