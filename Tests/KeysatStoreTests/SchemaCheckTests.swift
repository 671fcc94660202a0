import Glibc
import KeysatCore
import KeysatStore
import XCTest

/// `SchemaCheck` learns what each step makes by applying the steps in memory: if that ever
/// failed it would know nothing and find nothing wrong. Each table, column, index and trigger
/// of a current database is removed in turn, and each removal must be named.
final class SchemaCheckTests: XCTestCase {
    private let path = "/tmp/keysat-schemacheck-test-\(UInt64.random(in: 0...UInt64.max)).db"

    override func tearDown() {
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
    }

    private func fresh() throws -> WebhookStore {
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
        return try WebhookStore(path: path, create: true)
    }

    func testACurrentSchemaHasNoProblem() throws {
        XCTAssertNil(try fresh().schemaProblem())
    }

    func testEveryObjectOfEveryStepIsMissedWhenRemoved() throws {
        let made = try fresh().database.prepare(
            "SELECT type, name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index', 'trigger') AND name NOT LIKE 'sqlite_%' AND name <> 'keysat_webhooks_schema' AND sql IS NOT NULL"
        ).rows { ($0.string(0), $0.string(1), $0.string(2)) }
        XCTAssertGreaterThan(made.count, 15)
        for (type, name, _) in made {
            let store = try fresh()
            try store.database.execute("PRAGMA foreign_keys=OFF; DROP \(type.uppercased()) \(name)")
            let problem = try store.schemaProblem()
            XCTAssertTrue(
                problem?.contains("\(type) \(name) of schema step") == true, "\(name): \(problem ?? "nil")")
        }
        // A column added by a later step (13: the idempotency fingerprint).
        let store = try fresh()
        try store.database.execute("ALTER TABLE keysat_webhooks_idempotency DROP COLUMN request_hash")
        XCTAssertEqual(
            try store.schemaProblem(),
            "database \(path): column keysat_webhooks_idempotency.request_hash of schema step 13 is missing (dropped by hand?): restore the database from a backup; keysat-webhooks cannot remake what it held"
        )
    }
}
