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
        for bad in ["relative.db", "/srv/with space.db", "/srv/per%cent.db"] {
            let refused = try runTool(
                "keysat-webhooks", ["units", "--db", bad, "--output-dir", scratch.path])
            XCTAssertEqual(refused.status, 64, bad)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), [])
    }
}
