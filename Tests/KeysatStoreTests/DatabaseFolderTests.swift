import KeysatCore
import XCTest

@testable import KeysatStore

/// `init --group` never gives a system folder to a group, even an empty one (issue 20: `/var/lib`,
/// `/srv` or `/` would have been made 2770). Only checked here: nothing is changed.
final class DatabaseFolderTests: XCTestCase {
    func testSystemFoldersAreRefused() throws {
        for database in [
            "/keysat.db", "/var/lib/keysat.db", "/srv/keysat.db", "/etc/keysat.db", "/usr/keysat.db",
        ] {
            let folder = DatabaseFolder(database: database)
            XCTAssertThrowsError(try folder.checkMayShare(gid: 64_199), database) { error in
                let failure = KeysatError.from(error)
                XCTAssertEqual(failure.exitCode, 73, database)
                XCTAssertTrue(failure.message.contains("'\(folder.path)'"), failure.message)
            }
        }
    }

    func testCompanionsAreNotNeighbours() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent(
            "keysat-folder-\(UUID().uuidString)"
        ).path
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: base) }
        for name in [
            "k.db", "k.db-wal", "k.db-shm", "k.db-journal", "k.db.kick", "k.db.deliver.lock",
            "k.db.kick.tmp.ab12",
        ] {
            XCTAssertTrue(FileManager.default.createFile(atPath: base + "/" + name, contents: nil))
        }
        XCTAssertEqual(try DatabaseFolder(database: base + "/k.db").neighbours(), [])
        XCTAssertTrue(FileManager.default.createFile(atPath: base + "/other.db", contents: nil))
        XCTAssertEqual(try DatabaseFolder(database: base + "/k.db").neighbours(), ["other.db"])
    }
}
