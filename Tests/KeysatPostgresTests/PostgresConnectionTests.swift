import Foundation
import KeysatCore
import KeysatTestSupport
import XCTest

@testable import KeysatPostgres

/// PostgresConnection against a real PostgreSQL server (a throw-away cluster per class).
final class PostgresConnectionTests: XCTestCase {
    // XCTest runs a class's setUp, its tests and its tearDown one after another on one thread.
    nonisolated(unsafe) private static var slot = ClusterSlot.notStarted
    var cluster: PostgresTestCluster!

    override class func setUp() {
        super.setUp()
        slot = ClusterSlot.start()
    }

    override class func tearDown() {
        slot.stop()
        slot = .notStarted
        super.tearDown()
    }

    override func setUpWithError() throws {
        cluster = try Self.slot.cluster()
    }

    /// A fresh table of this test's own.
    private func makeTable(_ connection: PostgresConnection, _ columns: String) throws -> String {
        let table = "t_" + name.filter { $0.isLetter || $0.isNumber }.lowercased()
        try connection.execute("DROP TABLE IF EXISTS \(table)")
        try connection.execute("CREATE TABLE \(table) (\(columns))")
        return table
    }

    // MARK: - Round trips

    func testParametersRoundTripNullsUnicodeQuotesAndLargeText() throws {
        let connection = try cluster.connect()
        let table = try makeTable(connection, "id integer PRIMARY KEY, a text, b text")
        let large = String(repeating: "0123456789abcdéf", count: 128 * 1024)  // 2 MiB of UTF-8
        let rows: [[String?]] = [
            ["1", nil, "ünïcødé 🚀 — 日本語"],
            ["2", "'); DROP TABLE \(table); --", "line\nbreak\ttab \"quoted\" \\ backslash"],
            ["3", large, ""],
        ]
        for row in rows {
            let inserted = try connection.execute("INSERT INTO \(table) (id, a, b) VALUES ($1, $2, $3)", row)
            XCTAssertEqual(inserted.affectedRows, 1)
        }
        let selected = try connection.execute("SELECT id, a, b FROM \(table) ORDER BY id")
        XCTAssertEqual(selected.columns, ["id", "a", "b"])
        XCTAssertEqual(selected.rows, rows)
        // The server saw the same characters and bytes, not only this client.
        let lengths = try connection.execute(
            "SELECT char_length(b), octet_length(a) FROM \(table) WHERE id = $1", ["1"])
        XCTAssertEqual(lengths.rows, [["15", nil]])  // 15 characters, counted by hand
        XCTAssertEqual(
            try connection.execute("SELECT octet_length(a) FROM \(table) WHERE id = 3").rows,
            [["\(large.utf8.count)"]])
    }

    func testNULCharacterInAParameterIsRefusedWithoutItsValue() throws {
        let connection = try cluster.connect()
        XCTAssertThrowsError(try connection.execute("SELECT $1::text", ["secret\u{0}tail"])) { error in
            let error = error as! KeysatError
            XCTAssertEqual(error.exitCode, 65)
            XCTAssertFalse(error.message.contains("secret"), error.message)
        }
    }

    func testSessionSettingsAreAppliedAndApplicationNameCanBeOverridden() throws {
        let connection = try cluster.connect(
            settings: PostgresSessionSettings(
                statementTimeoutMS: 1500, lockTimeoutMS: 700, idleInTransactionTimeoutMS: 2500))
        let shown = try connection.execute(
            """
            SELECT current_setting('statement_timeout'), current_setting('lock_timeout'),
                   current_setting('idle_in_transaction_session_timeout'), current_setting('application_name'),
                   current_setting('client_encoding')
            """)
        XCTAssertEqual(shown.rows, [["1500ms", "700ms", "2500ms", "keysat-webhooks", "UTF8"]])
        // fallback_application_name: an operator's own name wins.
        let named = try PostgresConnection(cluster.connectionString(with: ["application_name": "host-b"]))
        XCTAssertEqual(try named.execute("SELECT current_setting('application_name')").rows, [["host-b"]])
    }

    // MARK: - Transactions

    func testRolledBackTransactionLeavesNothing() throws {
        let connection = try cluster.connect()
        let table = try makeTable(connection, "id integer PRIMARY KEY")
        struct Abandon: Error {}
        XCTAssertThrowsError(
            try connection.transaction {
                try connection.execute("INSERT INTO \(table) VALUES (1), (2)")
                throw Abandon()
            }
        ) { XCTAssertTrue($0 is Abandon) }
        XCTAssertFalse(connection.isInTransaction)
        XCTAssertEqual(try connection.execute("SELECT count(*) FROM \(table)").rows, [["0"]])

        let value = try connection.transaction {
            try connection.execute("INSERT INTO \(table) VALUES (3) RETURNING id").rows[0][0]
        }
        XCTAssertEqual(value, "3")
        XCTAssertEqual(try connection.execute("SELECT id FROM \(table)").rows, [["3"]])
    }

    /// PostgreSQL answers COMMIT in an aborted transaction with a silent ROLLBACK: a body that
    /// swallowed a statement's error must not be reported as committed.
    func testTransactionWhoseStatementFailedSilentlyIsNotReportedCommitted() throws {
        let connection = try cluster.connect()
        let table = try makeTable(connection, "id integer PRIMARY KEY")
        XCTAssertThrowsError(
            try connection.transaction {
                try connection.execute("INSERT INTO \(table) VALUES (1)")
                _ = try? connection.execute("INSERT INTO \(table) VALUES (1)")
            }
        ) { XCTAssertEqual(($0 as? KeysatError)?.exitCode, 70, "\($0)") }
        XCTAssertFalse(connection.isInTransaction)
        XCTAssertEqual(try connection.execute("SELECT count(*) FROM \(table)").rows, [["0"]])
    }

    func testNestedTransactionIsRefused() throws {
        let connection = try cluster.connect()
        XCTAssertThrowsError(try connection.transaction { try connection.transaction {} }) {
            XCTAssertEqual(($0 as? KeysatError)?.exitCode, 70)
        }
        XCTAssertFalse(connection.isInTransaction)
    }

    // MARK: - Errors and their classes

    func testSyntaxErrorIsInternalWithItsSQLState() throws {
        let connection = try cluster.connect()
        XCTAssertThrowsError(try connection.execute("SELEC 1")) { error in
            let error = error as! KeysatError
            XCTAssertEqual(error.exitCode, 70)
            XCTAssertTrue(error.message.contains("syntax error"), error.message)
            XCTAssertTrue(error.message.contains("SQLSTATE 42601"), error.message)
        }
        // The session is still usable.
        XCTAssertEqual(try connection.execute("SELECT 1").rows, [["1"]])
    }

    func testUniqueViolationIsDataErrorWithoutTheValue() throws {
        let connection = try cluster.connect()
        let table = try makeTable(connection, "key text PRIMARY KEY")
        try connection.execute("INSERT INTO \(table) VALUES ($1)", ["idem-key-s3cr3t"])
        XCTAssertThrowsError(try connection.execute("INSERT INTO \(table) VALUES ($1)", ["idem-key-s3cr3t"]))
        {
            let error = $0 as! KeysatError
            XCTAssertEqual(error.exitCode, 65)
            XCTAssertTrue(error.message.contains("SQLSTATE 23505"), error.message)
            XCTAssertTrue(error.message.contains("_pkey\""), error.message)  // the constraint's name
            XCTAssertFalse(error.message.contains("s3cr3t"), error.message)
        }
    }

    /// The server's message for a value that does not fit quotes the value: it is withheld.
    func testDataExceptionIsDataErrorWithoutTheValue() throws {
        let connection = try cluster.connect()
        XCTAssertThrowsError(try connection.execute("SELECT $1::integer", ["token-s3cr3t"])) {
            let error = $0 as! KeysatError
            XCTAssertEqual(error.exitCode, 65)
            XCTAssertTrue(error.message.contains("SQLSTATE 22P02"), error.message)
            XCTAssertFalse(error.message.contains("s3cr3t"), error.message)
        }
    }

    func testStatementTimeoutIsTemporary() throws {
        let connection = try cluster.connect(settings: PostgresSessionSettings(statementTimeoutMS: 200))
        let started = Date()
        XCTAssertThrowsError(try connection.execute("SELECT pg_sleep(20)")) {
            let error = $0 as! KeysatError
            XCTAssertEqual(error.exitCode, 75)
            XCTAssertTrue(error.message.contains("SQLSTATE 57014"), error.message)
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
    }

    func testLockTimeoutIsTemporary() throws {
        let holder = try cluster.connect()
        let table = try makeTable(holder, "id integer PRIMARY KEY")
        try holder.execute("INSERT INTO \(table) VALUES (1)")
        let waiter = try cluster.connect(settings: PostgresSessionSettings(lockTimeoutMS: 200))
        try holder.transaction {
            try holder.execute("SELECT id FROM \(table) FOR UPDATE")
            XCTAssertThrowsError(try waiter.execute("UPDATE \(table) SET id = 2")) {
                let error = $0 as! KeysatError
                XCTAssertEqual(error.exitCode, 75)
                XCTAssertTrue(error.message.contains("SQLSTATE 55P03"), error.message)
            }
        }
    }

    func testBadPasswordIsPermissionDeniedWithoutThePassword() throws {
        let string = cluster.connectionString(with: ["passfile": nil, "password": "wrong-pa55word"])
        XCTAssertThrowsError(try PostgresConnection(string)) {
            let error = $0 as! KeysatError
            XCTAssertEqual(error.exitCode, 77, error.message)
            XCTAssertTrue(error.message.contains("password authentication failed"), error.message)
            XCTAssertFalse(error.message.contains("pa55word"), error.message)
        }
    }

    func testMissingDatabaseIsNoInput() throws {
        XCTAssertThrowsError(try PostgresConnection(cluster.connectionString(with: ["dbname": "no_such_db"])))
        {
            let error = $0 as! KeysatError
            XCTAssertEqual(error.exitCode, 66, error.message)
            XCTAssertTrue(
                error.message.hasSuffix(
                    "; create it (createdb no_such_db, as its owner), then run 'keysat-webhooks init'"), error.message)
        }
    }

    /// This host out of descriptors or memory while connecting is 71 with the advice to raise
    /// the limit (libpq's words; the server never saw the connection), as SQLite's is.
    func testThisHostRunningShortWhileConnectingIsSystemExhaustion() {
        for (words, advice) in [
            ("could not create socket: Too many open files", "ulimit -n"),
            ("out of memory", "ulimit -v"),
        ] {
            let error = PostgresFailure.connection(words).keysatError
            XCTAssertEqual(error.exitCode, 71, error.message)
            XCTAssertTrue(error.message.contains(advice), error.message)
        }
        let server = PostgresFailure.server(sqlState: "53200", primary: "out of memory").keysatError
        XCTAssertEqual(server.exitCode, 71)
        XCTAssertFalse(server.message.contains("ulimit"), "the server's memory is not this process's limit")
    }

    func testUnreachablePortIsUnavailable() throws {
        // Port 1 (tcpmux): nothing listens there, so the connection is refused at once.
        XCTAssertThrowsError(try PostgresConnection(cluster.connectionString(with: ["port": "1"]))) {
            let error = $0 as! KeysatError
            XCTAssertEqual(error.exitCode, 69, error.message)
            XCTAssertTrue(error.message.contains("Connection refused"), error.message)
        }
    }

    func testMalformedConnectionStringIsUsageErrorWithoutThePassword() throws {
        // libpq's own message here would quote "word": the part of the password after the space.
        XCTAssertThrowsError(try PostgresConnection("host=127.0.0.1 password=pass word")) {
            let error = $0 as! KeysatError
            XCTAssertEqual(error.exitCode, 64, error.message)
            XCTAssertFalse(error.message.contains("word\""), error.message)
            XCTAssertFalse(error.message.contains("pass "), error.message)
        }
        XCTAssertThrowsError(try PostgresConnection("host=127.0.0.1 nonsense")) {
            let error = $0 as! KeysatError
            XCTAssertEqual(error.exitCode, 64, error.message)
            XCTAssertTrue(error.message.contains("nonsense"), error.message)
        }
    }

    /// A connection URI works as well as keyword/value pairs.
    func testConnectsWithAURI() throws {
        let uri =
            "postgresql://keysat@127.0.0.1:\(cluster.value("port")!)/keysat?passfile="
            + cluster.value("passfile")! + "&sslmode=disable"
        let connection = try PostgresConnection(uri)
        XCTAssertEqual(try connection.execute("SELECT current_user").rows, [["keysat"]])
        XCTAssertGreaterThanOrEqual(connection.serverVersion, 150000)
    }
}
