import Foundation
import XCTest

/// Files in a folder another user can write (issue 12, classes 1, 2, 6 and 10): links and
/// special files planted at every path the tools write are refused, never followed or waited
/// on; an enqueue that exits 0 has reached the disk; a 0-byte file is not a database.
final class SharedFolderTests: XCTestCase {
    /// Runs `body` with a process holding the database open, so that no checkpoint at close hides
    /// what a command itself synced or wrote.
    func testEnqueueSyncsItsCommitBeforeExitingZero() throws {
        try requireSQLite("the database file and its WAL")
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()
        let holder = try db.holdOpen()
        defer { holder.terminate() }
        let traced = try runTool(
            "/usr/bin/strace",
            [
                "-f", "-y", "-e", "trace=fsync,fdatasync", Binaries.path("keysat-enqueue"), "--db", db.path,
                "e", "{}",
            ])
        XCTAssertEqual(traced.status, 0, traced.stderr)
        let syncs = traced.stderr.split(separator: "\n").filter {
            ($0.hasPrefix("fdatasync(") || $0.hasPrefix("fsync(")) && $0.contains(db.path + "-wal>")
                && $0.hasSuffix("= 0")
        }
        XCTAssertGreaterThanOrEqual(
            syncs.count, 1, "the commit's WAL frames were not synced:\n\(traced.stderr)")
        XCTAssertEqual(try db.count(), 1)
    }

    func testLinksAndSpecialFilesAtWrittenPathsAreRefusedNotFollowed() throws {
        try requireSQLite("links and special files at the paths of the database, its WAL, lock and kick files")
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()
        let victim = try scratch.write("victim", "precious\n")
        let lock = db.path + ".deliver.lock"
        let kick = db.path + ".kick"
        let metrics = scratch.file("metrics.prom")

        // A link planted at each path a run or an enqueue writes.
        for (path, run) in [
            (lock, { try db.deliver() }), (kick, { try db.enqueue(["--kick", "e", "{}"]) }),
            (metrics, { try db.deliver(["--metrics-file", metrics]) }),
        ] as [(String, () throws -> ProcessResult)] {
            try? FileManager.default.removeItem(atPath: path)
            XCTAssertEqual(symlink(victim, path), 0)
            let result = try run()
            XCTAssertTrue(
                result.stderr.contains("is a symbolic link; refusing to follow it"),
                "\(path): \(result.stderr)")
            XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "precious\n", path)
            XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: path), victim, path)
            try FileManager.default.removeItem(atPath: path)
        }
        // The lock file is the run's own: a refusal there is an error (73 or 77), nothing sent.
        unlink(lock)
        XCTAssertEqual(symlink(victim, lock), 0)
        XCTAssertEqual(try db.deliver().status, 77)
        unlink(lock)
        // The metrics file is not: the run succeeds and warns.
        XCTAssertEqual(symlink(victim, metrics), 0)
        let warned = try db.deliver(["--metrics-file", metrics])
        XCTAssertEqual(warned.status, 0, warned.stderr)
        XCTAssertTrue(warned.stderr.contains("cannot write the metrics file"), warned.stderr)
        unlink(metrics)

        // A regular file of another user planted at the lock and metrics paths.
        if geteuid() == 0 {
            for path in [lock, metrics] {
                unlink(path)
                FileManager.default.createFile(atPath: path, contents: Data("theirs\n".utf8))
                XCTAssertEqual(chown(path, 64103, 64103), 0)
            }
            let foreign = try db.deliver(["--metrics-file", metrics])
            XCTAssertEqual(foreign.status, 77, foreign.stderr)
            XCTAssertTrue(
                foreign.stderr.contains("lock file \(lock) belongs to another user (uid 64103)"),
                foreign.stderr)
            unlink(lock)
            let warned = try db.deliver(["--metrics-file", metrics])
            XCTAssertEqual(warned.status, 0, warned.stderr)
            XCTAssertEqual(try String(contentsOfFile: metrics, encoding: .utf8), "theirs\n")
        }

        // A FIFO at each path: refused at once, never waited on (a blocked open would hang here).
        for path in [lock, kick, metrics] {
            unlink(path)
            XCTAssertEqual(mkfifo(path, 0o600), 0)
        }
        let started = Date()
        let locked = try db.deliver(["--metrics-file", metrics])
        XCTAssertEqual(locked.status, 73, locked.stderr)
        XCTAssertTrue(locked.stderr.contains("lock file \(lock) is not a regular file"), locked.stderr)
        unlink(lock)
        let kicked = try db.enqueue(["--kick", "e", "{}"])
        XCTAssertEqual(kicked.status, 0, "the event is stored; the kick is a warning: \(kicked.stderr)")
        XCTAssertTrue(kicked.stderr.contains("kick file \(kick) is not a regular file"), kicked.stderr)
        let run = try db.deliver(["--metrics-file", metrics])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stderr.contains("metrics file \(metrics) is not a regular file"), run.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 20)

        // A FIFO, a link or a directory in place of the database's companion files, or of the
        // database itself: refused with a clear error, nothing opened through them.
        for suffix in ["-wal", "-shm", "-journal"] {
            unlink(db.path + suffix)  // the WAL and shared-memory files persist between runs
            XCTAssertEqual(symlink(victim, db.path + suffix), 0)
            let result = try db.enqueue(["e", "{}"])
            XCTAssertNotEqual(result.status, 0, suffix)
            XCTAssertTrue(result.stderr.contains("is a symbolic link"), "\(suffix): \(result.stderr)")
            unlink(db.path + suffix)
        }
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "precious\n")
        let fifo = scratch.file("fifo.db")
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        for (tool, arguments) in [
            ("keysat-enqueue", ["--db", fifo, "e", "{}"]), ("keysat-deliver", ["--db", fifo]),
            ("keysat-webhooks", ["stats", "--db", fifo]),
        ] {
            let result = try runTool(tool, arguments)
            XCTAssertEqual(result.status, 65, "\(tool): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("is not a regular file"), result.stderr)
        }
    }

    func testAZeroByteFileIsNotADatabaseUnlessInit() throws {
        try requireSQLite("a zero-byte file given as the database")
        let scratch = try Scratch()
        let path = try scratch.write("empty.db", "", mode: 0o600)
        for (tool, arguments) in [
            ("keysat-enqueue", ["--db", path, "e", "{}"]), ("keysat-deliver", ["--db", path]),
            ("keysat-webhooks", ["endpoint", "list", "--db", path]),
        ] {
            let result = try runTool(tool, arguments)
            XCTAssertEqual(result.status, 65, "\(tool): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("is empty, not a database"), result.stderr)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)).count, 0, "\(tool) changed it")
        }
        let made = try runTool("keysat-webhooks", ["init", "--db", path])
        XCTAssertEqual(made.status, 0, made.stderr)
        XCTAssertEqual(try runTool("keysat-enqueue", ["--db", path, "e", "{}"]).status, 0)
    }
}

/// An old secret is gone from the database file and its WAL once replaced or removed, while
/// another program keeps the database open (issue 12, class 10).
final class SecretErasureTests: XCTestCase {
    private func holdReading(_ db: TestDatabase) throws -> Process {
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        holder.arguments = [
            "python3", "-c",
            "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN'); c.execute('SELECT count(*) FROM webhook_endpoints').fetchall(); time.sleep(120)",
            db.path,
        ]
        try holder.run()
        usleep(300_000)
        return holder
    }

    private func lingers(_ secret: String, in db: TestDatabase) -> [String] {
        ["", "-wal"].filter { suffix in
            FileManager.default.contents(atPath: db.path + suffix)?.range(of: Data(secret.utf8)) != nil
        }
    }

    func testRotateWithoutGraceAndRemoveEraseTheOldSecretWhileAnotherProgramHoldsTheDatabase() throws {
        try requireSQLite("the database file and its WAL")
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let id = try db.addEndpoint()
        let removed = try db.addEndpoint("http://127.0.0.1:9/other")
        let old = try SQL.value(db.path, "SELECT secret FROM webhook_endpoints WHERE id = '\(id)'")
        let gone = try SQL.value(db.path, "SELECT secret FROM webhook_endpoints WHERE id = '\(removed)'")
        let holder = try db.holdOpen()
        defer { holder.terminate() }
        let rotated = try runTool(
            "keysat-webhooks", ["endpoint", "rotate-secret", id, "--grace", "0", "--db", db.path])
        XCTAssertEqual(rotated.status, 0, rotated.stderr)
        XCTAssertEqual(rotated.stderr, "")
        XCTAssertEqual(lingers(old, in: db), [], "the replaced secret lingers")
        let remove = try runTool("keysat-webhooks", ["endpoint", "remove", removed, "--db", db.path])
        XCTAssertEqual(remove.status, 0, remove.stderr)
        XCTAssertEqual(lingers(gone, in: db), [], "the removed endpoint's secret lingers")

        // A reader inside a transaction keeps the old page images: the command says so.
        let current = try SQL.value(db.path, "SELECT secret FROM webhook_endpoints WHERE id = '\(id)'")
        let reader = try holdReading(db)
        let again = try runTool(
            "keysat-webhooks",
            ["endpoint", "rotate-secret", id, "--grace", "0", "--db", db.path, "--busy-timeout", "200"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(
            again.stderr.contains("the old secret stays in its WAL until that read ends"), again.stderr)
        reader.terminate()
        reader.waitUntilExit()
        // The next run that sends anything checkpoints it away.
        _ = try db.enqueue(["e", "{}"])
        _ = try db.deliver(["--timeout", "1"])
        XCTAssertEqual(
            lingers(current, in: db), [], "the secret replaced during a read lingers after the next run")
    }
}
