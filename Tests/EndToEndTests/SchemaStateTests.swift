import Foundation
import XCTest

/// Issue 20: schema states that ended in 70, "a bug". A schema written by a newer
/// keysat-webhooks was used silently; a deleted step row or a dropped table made every tool,
/// keysat-enqueue included, exit 70 with `duplicate column name`.
final class SchemaStateTests: XCTestCase {
    /// A database with an endpoint and one delivery, and the schema version `init` gave it.
    private func populated(_ scratch: Scratch) throws -> (TestDatabase, Int) {
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()
        XCTAssertEqual(try db.enqueue(["license.issued", "{}"]).status, 0)
        return (db, Int(try SQL.value(db.path, "SELECT max(version) FROM keysat_webhooks_schema")) ?? 0)
    }

    /// The commands that write, each run on `db`: their results by name.
    private func writers(_ db: TestDatabase) throws -> [(String, ProcessResult)] {
        [
            ("keysat-enqueue", try db.enqueue(["license.issued", "{}"])),
            (
                "keysat-enqueue --idempotency-key",
                try db.enqueue(["--idempotency-key", "k", "license.issued", "{}"])
            ),
            ("keysat-deliver", try runTool("keysat-deliver", ["--db", db.path])),
            ("init", try runTool("keysat-webhooks", ["init", "--db", db.path])),
            (
                "endpoint add",
                try runTool("keysat-webhooks", ["endpoint", "add", "https://example.com/h", "--db", db.path])
            ),
        ]
    }

    func testANewerSchemaIsRefusedForWritingAndReadWithAWarning() throws {
        let scratch = try Scratch()
        let (db, known) = try populated(scratch)
        try SQL.execute(
            db.path,
            "INSERT INTO keysat_webhooks_schema (version, applied_at) VALUES (\(known + 1), '2030-01-01T00:00:00Z')"
        )
        let before = try SQL.dump(db.path)
        for (name, result) in try writers(db) {
            XCTAssertEqual(result.status, 75, "\(name): \(result.stderr)")
            XCTAssertTrue(
                result.stderr.contains(
                    "was written by a newer keysat-webhooks (schema \(known + 1), this one knows \(known)): upgrade keysat-webhooks"
                ),
                "\(name): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(name): \(result.stderr)")
        }
        XCTAssertEqual(try SQL.dump(db.path), before, "a refused command changed the database")
        // Read-only commands read it (every step only adds), saying it is newer.
        for arguments in [["stats"], ["deliveries", "list"], ["endpoint", "list"]] {
            let result = try runTool("keysat-webhooks", arguments + ["--db", db.path])
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertTrue(result.stderr.contains("written by a newer keysat-webhooks"), result.stderr)
        }
        let dryRun = try runTool("keysat-deliver", ["--dry-run", "--db", db.path])
        XCTAssertEqual(dryRun.status, 0, dryRun.stderr)
        XCTAssertEqual(dryRun.lines.count, 1)
        XCTAssertEqual(try SQL.dump(db.path), before)
    }

    /// The last step's row deleted: the step would run again (`duplicate column name`, 70).
    func testADeletedStepRowIs65NamingTheStepAndInitRepairsIt() throws {
        try requireSQLite("schema repair of SQLite's steps 1-13 (init --repair)")
        let scratch = try Scratch()
        let (db, known) = try populated(scratch)
        try SQL.execute(db.path, "DELETE FROM keysat_webhooks_schema WHERE version = \(known)")
        let before = try SQL.dump(db.path)
        for (name, result) in try writers(db) {
            XCTAssertEqual(result.status, 65, "\(name): \(result.stderr)")
            XCTAssertTrue(
                result.stderr.contains(
                    "schema step \(known) is applied but not recorded in keysat_webhooks_schema"),
                "\(name): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("keysat-webhooks init --repair"), result.stderr)
            XCTAssertFalse(result.stderr.contains("duplicate column"), result.stderr)
        }
        XCTAssertEqual(try SQL.dump(db.path), before)
        let repair = try runTool("keysat-webhooks", ["init", "--repair", "--db", db.path])
        XCTAssertEqual(repair.status, 0, repair.stderr)
        XCTAssertTrue(repair.stderr.contains("recorded schema steps \(known) as applied"), repair.stderr)
        XCTAssertEqual(try db.enqueue(["license.issued", "{}"]).status, 0)
        XCTAssertEqual(try db.count(), 2)
    }

    /// The schema table dropped: every step ran again from the first, and step 4 failed.
    func testADroppedSchemaTableIs65NamingItAndInitRepairsIt() throws {
        try requireSQLite("schema repair of SQLite's steps 1-13 (init --repair)")
        let scratch = try Scratch()
        let (db, _) = try populated(scratch)
        // Every step recorded again (counted, not taken to be 1…latest: step numbers may skip).
        let steps = try SQL.value(db.path, "SELECT count(*) FROM keysat_webhooks_schema")
        try SQL.execute(db.path, "DROP TABLE keysat_webhooks_schema")
        for (name, result) in try writers(db) {
            XCTAssertEqual(result.status, 65, "\(name): \(result.stderr)")
            XCTAssertTrue(
                result.stderr.contains("table keysat_webhooks_schema is missing"), "\(name): \(result.stderr)"
            )
        }
        let stats = try runTool("keysat-webhooks", ["stats", "--db", db.path])
        XCTAssertEqual(stats.status, 65, stats.stderr)
        XCTAssertTrue(stats.stderr.contains("table keysat_webhooks_schema is missing"), stats.stderr)
        XCTAssertEqual(try runTool("keysat-webhooks", ["init", "--repair", "--db", db.path]).status, 0)
        XCTAssertEqual(try SQL.value(db.path, "SELECT count(*) FROM keysat_webhooks_schema"), steps)
        XCTAssertEqual(try db.enqueue(["license.issued", "{}"]).status, 0)
    }

    /// A table of this project dropped while its step stays recorded: a start that finds the
    /// schema current does not read the schema (keysat-enqueue's cost), so the statement that
    /// needs the table fails, and that failure is read as what it is.
    func testADroppedTableIs65NamingIt() throws {
        try requireSQLite("schema repair of SQLite's steps 1-13 (init --repair)")
        let scratch = try Scratch()
        let (db, _) = try populated(scratch)
        try SQL.execute(db.path, "DROP TABLE keysat_webhooks_totals")
        let before = try SQL.dump(db.path)
        // Every enqueue (its insert trigger keeps the totals), init, and a run.
        for result in [
            try db.enqueue(["license.issued", "{}"]),
            try runTool("keysat-webhooks", ["init", "--db", db.path]),
            try runTool("keysat-webhooks", ["stats", "--db", db.path]),
        ] {
            XCTAssertEqual(result.status, 65, result.stderr)
            XCTAssertTrue(
                result.stderr.contains("table keysat_webhooks_totals of schema step 11 is missing"),
                result.stderr)
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        }
        XCTAssertEqual(try SQL.dump(db.path), before)

        try SQL.execute(db.path, "DROP TABLE keysat_webhooks_idempotency")
        let keyed = try db.enqueue(["--idempotency-key", "k", "license.issued", "{}"])
        XCTAssertEqual(keyed.status, 65, keyed.stderr)
        XCTAssertTrue(
            keyed.stderr.contains("table keysat_webhooks_idempotency of schema step 2"), keyed.stderr)
    }

    /// An index holds nothing its table does not: init names it and --repair remakes it.
    func testADroppedIndexIsNamedByInitAndRemadeByRepair() throws {
        try requireSQLite("schema repair of SQLite's steps 1-13 (init --repair)")
        let scratch = try Scratch()
        let (db, _) = try populated(scratch)
        try SQL.execute(db.path, "DROP INDEX idx_keysat_webhooks_deliveries_stopped")
        let check = try runTool("keysat-webhooks", ["init", "--db", db.path])
        XCTAssertEqual(check.status, 65, check.stderr)
        XCTAssertTrue(
            check.stderr.contains(
                "index idx_keysat_webhooks_deliveries_stopped of schema step 11 is missing: run 'keysat-webhooks init --repair' to remake it"
            ), check.stderr)
        let repair = try runTool("keysat-webhooks", ["init", "--repair", "--db", db.path])
        XCTAssertEqual(repair.status, 0, repair.stderr)
        XCTAssertEqual(try runTool("keysat-webhooks", ["init", "--db", db.path]).status, 0)
        XCTAssertEqual(
            try SQL.value(
                db.path, "SELECT sql FROM sqlite_master WHERE name = 'idx_keysat_webhooks_deliveries_stopped'"
            )
            .contains("WHERE delivered_at IS NULL AND next_attempt_at IS NULL"), true)
    }

    func testAMissingColumnIs65NamingIt() throws {
        try requireSQLite("schema repair of SQLite's steps 1-13 (init --repair)")
        let scratch = try Scratch()
        let (db, _) = try populated(scratch)
        try SQL.execute(db.path, "ALTER TABLE webhook_endpoints DROP COLUMN disabled_at")
        for result in [
            try runTool("keysat-webhooks", ["endpoint", "list", "--db", db.path]),
            try runTool("keysat-webhooks", ["init", "--db", db.path]),
        ] {
            XCTAssertEqual(result.status, 65, result.stderr)
            XCTAssertTrue(
                result.stderr.contains("column webhook_endpoints.disabled_at of schema step 5 is missing"),
                result.stderr)
        }
    }
}
