import Foundation
import XCTest

/// `keysat-webhooks units` is the one source of the shipped units (issue 11).
final class UnitsTests: XCTestCase {
    func testShippedUnitsAreWhatUnitsPrintsForTheDefaultDatabase() throws {
        let scratch = try Scratch()
        let made = try runTool(
            "keysat-webhooks",
            [
                "units", "--db", "/var/lib/keysat/keysat.db", "--bindir", "/usr/local/bin", "--output-dir",
                scratch.path,
            ])
        XCTAssertEqual(made.status, 0, made.stderr)
        for name in ["keysat-deliver.service", "keysat-deliver.timer", "keysat-deliver.path"] {
            let shipped = try String(
                contentsOf: Binaries.packageRoot.appendingPathComponent("cron/" + name), encoding: .utf8)
            XCTAssertEqual(try String(contentsOfFile: scratch.file(name), encoding: .utf8), shipped, name)
            let mode =
                try FileManager.default.attributesOfItem(atPath: scratch.file(name))[.posixPermissions]
                as? Int
            XCTAssertEqual(mode, 0o644)
        }
    }

    func testUnitsForADatabaseElsewhereWatchItsKickFileAndMayWriteItsFolder() throws {
        let printed = try runTool(
            "keysat-webhooks", ["units", "--db", "/srv/keysat/licensing.db", "--bindir", "/opt/k/bin"])
        XCTAssertEqual(printed.status, 0, printed.stderr)
        let lines = printed.lines
        XCTAssertTrue(lines.contains("PathChanged=/srv/keysat/licensing.db.kick"), printed.output)
        XCTAssertTrue(lines.contains("Environment=KEYSAT_DB=/srv/keysat/licensing.db"), printed.output)
        XCTAssertTrue(lines.contains("ReadWritePaths=/srv/keysat"), printed.output)
        XCTAssertTrue(lines.contains("ExecStart=/opt/k/bin/keysat-deliver --linger 1"), printed.output)
        XCTAssertFalse(lines.contains("StateDirectory=keysat"), printed.output)
        XCTAssertEqual(lines.filter { $0.hasPrefix("# keysat-deliver.") }.count, 3)

        // A path that a unit file cannot hold is refused, and nothing is written.
        let scratch = try Scratch()
        for bad in ["relative.db", "/srv/with space.db", "/srv/$HOME.db"] {
            let refused = try runTool(
                "keysat-webhooks", ["units", "--db", bad, "--output-dir", scratch.path])
            XCTAssertEqual(refused.status, 64, bad)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), [])
    }

    /// Issue 20: `--bindir` was not validated (a newline added `ExecStartPre=` lines to the
    /// service, a space split `ExecStart=`, `%h` was expanded), and `--db` took `..`, control
    /// characters and a trailing slash. Every value is refused or escaped now, and every unit
    /// that is written passes `systemd-analyze verify`.
    func testHostileBindirAndDatabaseAreRefusedOrEscaped() throws {
        let scratch = try Scratch()
        let refusals: [(String, String, String)] = [
            ("--bindir", "/opt/k\nExecStartPre=/bin/touch /tmp/pwned", "control characters"),
            ("--bindir", "/opt/my programs", "white space"), ("--bindir", "bin", "absolute"),
            ("--bindir", "/opt/k/", "end with '/'"), ("--bindir", "/opt/../bin", "'..'"),
            ("--bindir", "/opt/\"k\"", "quotes"), ("--bindir", "/opt/$HOME", "'$'"),
            ("--db", "/srv/../etc/keysat.db", "'..'"), ("--db", "/srv/keysat/", "end with '/'"),
            ("--db", "/srv/k\u{1b}[2J/keysat.db", "control characters"), ("--db", "/srv//k.db", "'//'"),
            ("--db", "/srv/k\tdb", "control characters"), ("--db", "/var/lib/keysat.db", "system folder"),
            ("--db", "/keysat.db", "system folder"),
            // The adversarial pass: systemd refuses a component over 255 bytes (fatal in verify).
            ("--bindir", "/opt/" + String(repeating: "b", count: 300), "longer than 255 bytes"),
        ]
        for (option, value, reason) in refusals {
            var arguments = ["units", "--output-dir", scratch.path, option, value]
            if option == "--db" { arguments += ["--bindir", "/usr/bin"] }
            let refused = try runTool("keysat-webhooks", arguments)
            XCTAssertEqual(refused.status, 64, "\(option) \(value)")
            XCTAssertTrue(refused.stderr.hasPrefix("keysat-webhooks: error: '\(option)'"), refused.stderr)
            XCTAssertTrue(refused.stderr.contains(reason), "\(value): \(refused.stderr)")
            XCTAssertEqual(refused.stderr.split(separator: "\n").count, 1, refused.stderr)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), [])

        // '%' is written as '%%': systemd reads back the very path (verify checks that the
        // ExecStart= program exists, so an expanded '%h' would fail it).
        let bindir = scratch.file("bin%h")
        try FileManager.default.createDirectory(atPath: bindir, withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(
            atPath: bindir + "/keysat-deliver", withDestinationPath: Binaries.path("keysat-deliver"))
        let units = scratch.file("units")
        try FileManager.default.createDirectory(atPath: units, withIntermediateDirectories: false)
        let made = try runTool(
            "keysat-webhooks",
            ["units", "--db", "/srv/100%h/k%i.db", "--bindir", bindir, "--output-dir", units])
        XCTAssertEqual(made.status, 0, made.stderr)
        let service = try String(contentsOfFile: units + "/keysat-deliver.service", encoding: .utf8)
        XCTAssertTrue(
            service.contains("\nExecStart=\(scratch.path)/bin%%h/keysat-deliver --linger 1\n"), service)
        XCTAssertTrue(service.contains("\nEnvironment=KEYSAT_DB=/srv/100%%h/k%%i.db\n"), service)
        XCTAssertTrue(service.contains("\nReadWritePaths=/srv/100%%h\n"), service)
        // A prepended mark (U+0600) joined the '%' after it into one grapheme, left single.
        let joined = try runTool(
            "keysat-webhooks",
            ["units", "--db", "/srv/k\u{0600}%t/k.db", "--bindir", bindir, "--output-dir", scratch.file("joined")])
        if joined.status == 0 {
            let text = try String(contentsOfFile: scratch.file("joined") + "/keysat-deliver.service", encoding: .utf8)
            XCTAssertTrue(text.contains("\u{0600}%%t"), text)
        }
        // A folder that is a link to / is / to systemd (ReadWritePaths= resolves it).
        let root = scratch.file("rootlink")
        try FileManager.default.createSymbolicLink(atPath: root, withDestinationPath: "/")
        let linked = try runTool(
            "keysat-webhooks", ["units", "--db", root + "/k.db", "--bindir", "/usr/bin", "--output-dir", units])
        XCTAssertEqual(linked.status, 64, linked.stderr)
        XCTAssertTrue(linked.stderr.contains("system folder"), linked.stderr)
        let path = try String(contentsOfFile: units + "/keysat-deliver.path", encoding: .utf8)
        XCTAssertTrue(path.contains("\nPathChanged=/srv/100%%h/k%%i.db.kick\n"), path)
        try verify(units, scratch: scratch)
    }

    /// `systemd-analyze verify` on the folder's units, with this tree's man pages (Documentation=).
    private func verify(_ units: String, scratch: Scratch) throws {
        let analyze = "/usr/bin/systemd-analyze"
        try XCTSkipUnless(
            FileManager.default.isExecutableFile(atPath: analyze), "systemd-analyze is not installed")
        let man = scratch.file("man")
        for section in ["1", "7"] {
            try FileManager.default.createDirectory(
                atPath: man + "/man" + section, withIntermediateDirectories: true)
            let pages = Binaries.packageRoot.appendingPathComponent("man").path
            for page in try FileManager.default.contentsOfDirectory(atPath: pages)
            where page.hasSuffix("." + section) {
                try FileManager.default.copyItem(
                    atPath: pages + "/" + page, toPath: man + "/man" + section + "/" + page)
            }
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: units).sorted().map {
            units + "/" + $0
        }
        let result = try runTool(analyze, ["verify"] + files, environment: ["MANPATH": man])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stderr + result.output, "", "systemd-analyze verify says nothing")
    }
}
