import Foundation
import XCTest

/// The group model (issue 11): the licensing service's user enqueues, the keysat user delivers,
/// both in the database's group; a user outside it gets 77. Real users (numeric ids, through
/// setpriv), a real database, a real receiver.
final class GroupModelTests: XCTestCase {
    let group = "64100"
    let service = "64101"
    let keysat = "64102"
    let outsider = "64103"

    /// Runs a built binary as `uid`, with `gid` and the supplementary `groups`, umask 0077 as a
    /// sandboxed unit would have it.
    func run(as uid: String, gid: String, groups: [String], _ program: String, _ arguments: [String])
        throws -> ProcessResult
    {
        let groupOption = groups.isEmpty ? ["--clear-groups"] : ["--groups", groups.joined(separator: ",")]
        return try runTool(
            "/bin/sh",
            ["-c", "umask 077; exec \"$@\"", "sh", "/usr/bin/setpriv", "--reuid", uid, "--regid", gid]
                + groupOption + [Binaries.path(program)] + arguments)
    }

    func testServiceEnqueuesKeysatDeliversOutsiderIsRefused() throws {
        try requireSQLite("the database's folder shared with a group (--group)")
        try XCTSkipUnless(geteuid() == 0, "needs root to switch users")
        let scratch = try Scratch()
        chmod(scratch.path, 0o755)
        let receiver = try Receiver(in: scratch)
        // As the package's postinst makes it: the folder belongs to keysat and its group.
        let folder = scratch.file("lib")
        XCTAssertEqual(mkdir(folder, 0o700), 0)
        XCTAssertEqual(chown(folder, UInt32(keysat)!, UInt32(group)!), 0)
        let db = folder + "/keysat.db"

        let made = try run(
            as: keysat, gid: group, groups: [], "keysat-webhooks", ["init", "--db", db, "--group", group])
        XCTAssertEqual(made.status, 0, made.stderr)
        XCTAssertEqual(made.stderr, "")
        XCTAssertEqual(try mode(db), 0o660)
        XCTAssertEqual(try mode(folder), 0o2770)

        let secret = try scratch.write("secret", String(repeating: "ab", count: 32), mode: 0o644)
        let added = try run(
            as: keysat, gid: group, groups: [], "keysat-webhooks",
            ["endpoint", "add", receiver.url("/status/204"), "--secret-file", secret, "--db", db, "--json"])
        XCTAssertEqual(added.status, 0, added.stderr)
        try receiver.expectSecret(String(repeating: "ab", count: 32), forPath: "/status/204")

        // The licensing service: its own user and group, a member of the database's group.
        let queued = try run(
            as: service, gid: service, groups: [group], "keysat-enqueue",
            ["--db", db, "--kick", "license.issued", #"{"license_id":"lic_1"}"#])
        XCTAssertEqual(queued.status, 0, queued.stderr)
        XCTAssertEqual(queued.stderr, "")
        let kick = db + ".kick"
        XCTAssertEqual(try mode(kick), 0o660)
        XCTAssertEqual(try owner(kick).gid, UInt32(group)!)

        let delivered = try run(as: keysat, gid: group, groups: [], "keysat-deliver", ["--db", db])
        XCTAssertEqual(delivered.status, 0, delivered.stderr)
        XCTAssertEqual(delivered.stderr, "", "no permission warning in the group model")
        XCTAssertEqual(try receiver.requests().count, 1)
        var info = stat()
        XCTAssertEqual(stat(kick, &info), 0)
        XCTAssertEqual(info.st_size, 0, "keysat emptied the kick file the service wrote")
        for file in try FileManager.default.contentsOfDirectory(atPath: folder) {
            XCTAssertEqual(try owner(folder + "/" + file).gid, UInt32(group)!, file)
            XCTAssertEqual(try mode(folder + "/" + file) & 0o007, 0, file)
        }

        // A second event after the keysat user's run checkpointed and removed the WAL.
        let second = try run(
            as: service, gid: service, groups: [group], "keysat-enqueue", ["--db", db, "e", "{}"])
        XCTAssertEqual(second.status, 0, second.stderr)

        // A user outside the group: 77 and a message that says what to do.
        for (program, arguments) in [
            ("keysat-enqueue", ["--db", db, "license.issued", "{}"]), ("keysat-deliver", ["--db", db]),
            ("keysat-webhooks", ["stats", "--db", db]),
        ] {
            let refused = try run(as: outsider, gid: outsider, groups: [], program, arguments)
            XCTAssertEqual(refused.status, 77, "\(program): \(refused.stderr)")
            XCTAssertTrue(refused.stderr.hasPrefix("\(program): error: "), refused.stderr)
            XCTAssertTrue(refused.stderr.contains("member of its group"), refused.stderr)
            XCTAssertEqual(refused.stderr.split(separator: "\n").count, 1, refused.stderr)
        }
        XCTAssertEqual(try SQL.value(db, "SELECT count(*) FROM webhook_deliveries"), "2")
    }

    func testInitRefusesAnUnknownGroup() throws {
        try requireSQLite("the database's folder shared with a group (--group)")
        let scratch = try Scratch()
        let db = scratch.file("keysat.db")
        let result = try runTool("keysat-webhooks", ["init", "--db", db, "--group", "no-such-group-here"])
        XCTAssertEqual(result.status, 65, result.stderr)
        XCTAssertTrue(result.stderr.contains("no group named 'no-such-group-here'"), result.stderr)
    }

    /// Issue 20: `--db varlib/keysat.db --group G` made `varlib` 2770 and locked a neighbouring
    /// service out of its own folder; a 1777 folder lost its sticky bit. Both are refused now,
    /// naming the folder and why, with nothing created or changed.
    func testInitGroupRefusesAFolderThatIsNotTheDatabasesOwn() throws {
        try requireSQLite("the database's folder shared with a group (--group)")
        let scratch = try Scratch()
        let varlib = scratch.file("varlib")
        XCTAssertEqual(mkdir(varlib, 0o755), 0)
        XCTAssertEqual(chmod(varlib, 0o755), 0)
        let neighbour = try scratch.write("varlib/other-service.conf", "x")
        let tmp = scratch.file("tmp")
        XCTAssertEqual(mkdir(tmp, 0o777), 0)
        XCTAssertEqual(chmod(tmp, 0o1777), 0)
        let gid = String(getegid() == 0 ? 64100 : getegid())
        for (folder, before, reason) in [
            (varlib, mode_t(0o755), "holds 'other-service.conf'"), (tmp, mode_t(0o1777), "is sticky"),
        ] {
            let group = try owner(folder).gid
            let refused = try runTool(
                "keysat-webhooks", ["init", "--db", folder + "/keysat.db", "--group", gid])
            XCTAssertEqual(refused.status, 73, refused.stderr)
            XCTAssertTrue(
                refused.stderr.hasPrefix(
                    "keysat-webhooks: error: will not give the folder '\(folder)' to the group"),
                refused.stderr)
            XCTAssertTrue(refused.stderr.contains(reason), refused.stderr)
            XCTAssertEqual(refused.stderr.split(separator: "\n").count, 1, refused.stderr)
            XCTAssertEqual(try mode(folder), before, "the folder's mode is unchanged")
            XCTAssertEqual(try owner(folder).gid, group, "the folder's group is unchanged")
            XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/keysat.db"), "no database made")
        }
        XCTAssertEqual(try mode(neighbour), 0o644)
    }

    /// A folder that holds only the database and its companions is still shared, and one the
    /// operator already gave to the group (2770) is used as it is, whatever else it holds.
    func testInitGroupSharesADedicatedFolderAndAcceptsOneAlreadyShared() throws {
        try requireSQLite("the database's folder shared with a group (--group)")
        let scratch = try Scratch()
        let gid = getegid() == 0 ? UInt32(64100) : getegid()
        let own = scratch.file("own")
        XCTAssertEqual(mkdir(own, 0o755), 0)
        let db = own + "/keysat.db"
        _ = try runTool("keysat-webhooks", ["init", "--db", db])
        _ = try runTool("keysat-enqueue", ["--db", db, "--kick", "e", "{}"])
        let shared = try runTool("keysat-webhooks", ["init", "--db", db, "--group", String(gid)])
        XCTAssertEqual(shared.status, 0, shared.stderr)
        XCTAssertEqual(try mode(own), 0o2770)
        XCTAssertEqual(try owner(own).gid, gid)

        _ = try scratch.write("own/notes.txt", "the operator's own file")
        let again = try runTool("keysat-webhooks", ["init", "--db", db, "--group", String(gid)])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(try mode(own), 0o2770)
    }

    private func mode(_ path: String) throws -> mode_t {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw POSIXError(.ENOENT) }
        return info.st_mode & 0o7777
    }

    private func owner(_ path: String) throws -> (uid: uid_t, gid: gid_t) {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw POSIXError(.ENOENT) }
        return (info.st_uid, info.st_gid)
    }
}

/// The processes that hold secrets cannot be dumped or read through /proc by their own uid
/// (issue 12, class 10).
final class NonDumpableTests: XCTestCase {
    func testSecretHoldingProcessesAreNotDumpable() throws {
        try XCTSkipUnless(geteuid() == 0, "needs root to run as another user")
        let scratch = try Scratch()
        chmod(scratch.path, 0o777)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()
        for suffix in ["", "-wal", "-shm"] { chown(db.path + suffix, 64102, 64102) }
        let location = try db.location(forUser: 64102, in: scratch)
        // The run's lock file is SQLite's.
        let lock = onPostgreSQL ? [] : ["--lock-file", scratch.file("lock")]
        for (program, arguments) in [
            ("keysat-webhooks", ["listen", "--port", "0"]),
            ("keysat-deliver", ["--db", location, "--linger", "3"] + lock),
            // keysat-enqueue holds no secret and stays dumpable (its start-up is budgeted).
            ("keysat-enqueue", ["--db", location, "e", "-"]),
        ] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments =
                ["--reuid", "64102", "--regid", "64102", "--clear-groups", Binaries.path(program)] + arguments
            let input = Pipe()
            process.standardInput = input  // keysat-enqueue waits for its data on standard input
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            defer {
                try? input.fileHandleForWriting.close()
                process.terminate()
                process.waitUntilExit()
            }
            usleep(500_000)
            XCTAssertTrue(process.isRunning, program)
            var info = stat()
            XCTAssertEqual(stat("/proc/\(process.processIdentifier)/environ", &info), 0)
            // /proc/PID/* of a non-dumpable process belong to root.
            XCTAssertEqual(info.st_uid, program == "keysat-enqueue" ? 64102 : 0, program)
        }
    }
}

/// A user who may only read the database (a monitoring user) can run the commands that only
/// read, and gets 77 for those that write (issue 12, class 10).
final class ReadOnlyUserTests: XCTestCase {
    func testAReadOnlyUserCanReadButNotWrite() throws {
        try requireSQLite("read-only access given by the database file mode")
        try XCTSkipUnless(geteuid() == 0, "needs root to run as another user")
        let scratch = try Scratch()
        chmod(scratch.path, 0o755)
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint()
        let id = try XCTUnwrap(db.enqueue(["license.issued", "{}"]).lines.first)
        // The monitoring group may read the files; nobody else may do anything.
        for file in try FileManager.default.contentsOfDirectory(atPath: scratch.path)
        where file.hasPrefix("keysat.db") {
            XCTAssertEqual(chown(scratch.file(file), 0, 64110), 0)
            XCTAssertEqual(chmod(scratch.file(file), 0o640), 0)
        }
        func asMonitor(_ program: String, _ arguments: [String]) throws -> ProcessResult {
            try runTool(
                "/usr/bin/setpriv",
                ["--reuid", "64111", "--regid", "64111", "--groups", "64110", Binaries.path(program)]
                    + arguments)
        }
        for arguments in [
            ["stats"], ["stats", "--json"], ["deliveries", "list"], ["deliveries", "show", id],
            ["endpoint", "list"],
            ["endpoint", "show", endpoint], ["purge", "--older-than", "1d", "--dry-run"],
        ] {
            let result = try asMonitor("keysat-webhooks", arguments + ["--db", db.path])
            XCTAssertEqual(result.status, 0, "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stderr, "", "\(arguments)")
        }
        let dry = try asMonitor("keysat-deliver", ["--dry-run", "--db", db.path])
        XCTAssertEqual(dry.status, 0, dry.stderr)
        XCTAssertEqual(dry.lines.count, 1)
        for (program, arguments) in [
            ("keysat-deliver", ["--db", db.path]), ("keysat-enqueue", ["--db", db.path, "e", "{}"]),
            ("keysat-webhooks", ["endpoint", "disable", endpoint, "--db", db.path]),
        ] {
            let refused = try asMonitor(program, arguments)
            XCTAssertEqual(refused.status, 77, "\(program) \(arguments): \(refused.stderr)")
        }
        XCTAssertEqual(try db.count(), 1)
    }
}
