import Foundation
import KeysatTestSupport
import XCTest

/// What a finished process left: its exit status and everything it wrote.
struct ProcessResult {
    var status: Int32
    var stdout: Data
    var stderr: String
    var output: String { String(decoding: stdout, as: UTF8.self) }
    var lines: [String] { output.split(separator: "\n").map(String.init) }
}

/// Running the built executables, as a user would.
enum Binaries {
    /// The folder holding the built binaries: `$KEYSAT_BIN_DIR` (the Makefile sets it), else
    /// the package's default debug build folder. Its keysat-enqueue and keysat-deliver are made
    /// links to keysat-webhooks if they are not (`linkNames`), so that a plain `swift test` runs
    /// what the user runs: the one program by its other names.
    static let directory: URL = {
        let folder: URL
        if let dir = ProcessInfo.processInfo.environment["KEYSAT_BIN_DIR"], !dir.isEmpty {
            folder = URL(fileURLWithPath: dir)
        } else {
            folder = packageRoot.appendingPathComponent(".build/debug")
        }
        linkNames(in: folder)
        return folder
    }()

    /// The names the one program is run by besides its own (issue 24), as the package links them.
    static let linkedNames = ["keysat-enqueue", "keysat-deliver"]

    /// Makes each of `linkedNames` in `folder` a symbolic link to keysat-webhooks, replacing
    /// anything else there (a program of its own from a build before issue 24), as
    /// scripts/link-programs does. A folder that cannot be written is left as it is: the tests
    /// that run the names then fail, saying which file they could not run.
    static func linkNames(in folder: URL) {
        let files = FileManager.default
        for name in linkedNames {
            let path = folder.appendingPathComponent(name).path
            if (try? files.destinationOfSymbolicLink(atPath: path)) == "keysat-webhooks" { continue }
            try? files.removeItem(atPath: path)
            try? files.createSymbolicLink(atPath: path, withDestinationPath: "keysat-webhooks")
        }
    }

    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
}

/// Runs `program` (a built binary's name, or an absolute path) and waits for it.
///
/// Standard input, output and error are files, so no pipe can fill up and block either side.
@discardableResult
func runTool(
    _ program: String, _ arguments: [String], stdin: Data? = nil, environment: [String: String] = [:]
) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program.hasPrefix("/") ? program : Binaries.path(program))
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "KEYSAT_DB")
    // The test receivers listen on 127.0.0.1, which the network policy refuses by default;
    // the policy's own tests set this variable themselves.
    env["KEYSAT_ALLOW_NETWORKS"] = "127.0.0.1"
    for (key, value) in environment { env[key] = value }
    process.environment = env
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("keysat-io-\(UUID().uuidString)")
    let paths = ["in", "out", "err"].map { base.path + "." + $0 }
    defer { for path in paths { try? FileManager.default.removeItem(atPath: path) } }
    try (stdin ?? Data()).write(to: URL(fileURLWithPath: paths[0]))
    FileManager.default.createFile(atPath: paths[1], contents: nil)
    FileManager.default.createFile(atPath: paths[2], contents: nil)
    let input = try FileHandle(forReadingFrom: URL(fileURLWithPath: paths[0]))
    let output = try FileHandle(forWritingTo: URL(fileURLWithPath: paths[1]))
    let error = try FileHandle(forWritingTo: URL(fileURLWithPath: paths[2]))
    defer {
        try? input.close()
        try? output.close()
        try? error.close()
    }
    process.standardInput = input
    process.standardOutput = output
    process.standardError = error
    try process.run()
    process.waitUntilExit()
    return ProcessResult(
        status: process.terminationStatus,
        stdout: try Data(contentsOf: URL(fileURLWithPath: paths[1])),
        stderr: String(decoding: try Data(contentsOf: URL(fileURLWithPath: paths[2])), as: UTF8.self))
}

/// A temporary folder, removed when the test ends, with the databases made for the test.
final class Scratch {
    let path: String
    /// PostgreSQL databases made for this test (`database(_:)`), dropped with the folder.
    private var databases: [String] = []

    init() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent(
            "keysat-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        path = base.path
    }

    deinit {
        for database in databases { TestBackend.dropDatabase(database) }
        try? FileManager.default.removeItem(atPath: path)
    }

    func file(_ name: String) -> String { path + "/" + name }

    /// Where a database nobody has made yet is to be, on the backend under test
    /// (KEYSAT_TEST_BACKEND): the file `name` in this folder for SQLite, an empty database of
    /// its own for PostgreSQL (a `postgresql://` URI, the password in a passfile). The one
    /// place an end-to-end test gets a `--db` from.
    func database(_ name: String = "keysat.db") throws -> String {
        let fresh = try TestBackend.freshLocation(in: path, name: name)
        if let database = fresh.database { databases.append(database) }
        return fresh.location
    }

    /// A location where no database is, on the backend under test: a file that does not
    /// exist, or a database the cluster does not have.
    func absentDatabase() throws -> String {
        try TestBackend.current() == .postgresql
            ? PostgresTestCluster.shared().uri(database: "absent_\(UUID().uuidString.prefix(8).lowercased())")
            : file("absent.db")
    }

    func write(_ name: String, _ text: String, mode: Int = 0o644) throws -> String {
        let target = file(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: target))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: target)
        return target
    }
}

/// Checks the message of a command run on a database that does not exist (status 66): it says
/// what to do, per backend (SQLite: `keysat-webhooks init` makes the file; PostgreSQL: the
/// database's owner creates it, then `keysat-webhooks init` makes the tables).
func assertMissingDatabaseAdvice(_ result: ProcessResult, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(result.status, 66, result.stderr, file: file, line: line)
    XCTAssertTrue(result.stderr.contains("keysat-webhooks init"), result.stderr, file: file, line: line)
    if onPostgreSQL {
        XCTAssertTrue(result.stderr.contains("does not exist"), result.stderr, file: file, line: line)
        XCTAssertTrue(result.stderr.contains("create it (createdb absent_"), result.stderr, file: file, line: line)
    }
}

/// Skips a test that is about SQLite itself (its file, its shell, its locks) when the suite
/// runs against PostgreSQL; `reason` says what of SQLite it tests.
func requireSQLite(_ reason: String) throws {
    if try TestBackend.current() != .sqlite {
        throw XCTSkip("SQLite only (\(reason)); KEYSAT_TEST_BACKEND=\(TestBackend.name)")
    }
}

/// Whether the suite runs against PostgreSQL (for the few checks whose SQL or meaning differs).
var onPostgreSQL: Bool { (try? TestBackend.current()) == .postgresql }

/// Reading and writing a database with the engine's own command-line tool, independently of
/// the code under test: sqlite3 for a file, psql for a `postgresql://` URI. What must be said
/// differently per engine is said here (`integrityCheck`, `dump`, `timeAgo`), not in the tests.
enum SQL {
    /// Rows of a query, each column as JSON gives it (NULL as NSNull).
    static func rows(_ database: String, _ sql: String) throws -> [[String: Any]] {
        let output: Data
        if TestBackend.isPostgreSQL(database) {
            output = try psql(database, "SELECT coalesce(json_agg(q), '[]') FROM (\(sql)) AS q").stdout
        } else {
            output = try sqlite3(["-json", database], sql).stdout
        }
        if output.isEmpty { return [] }
        return try JSONSerialization.jsonObject(with: output) as? [[String: Any]] ?? []
    }

    /// The values of a query as text, columns separated by "|" and rows by newlines.
    static func value(_ database: String, _ sql: String) throws -> String {
        let result = try TestBackend.isPostgreSQL(database) ? psql(database, sql) : sqlite3([database], sql)
        return result.output.trimmingCharacters(in: .newlines)
    }

    static func execute(_ database: String, _ sql: String) throws {
        _ = try value(database, sql)
    }

    /// The whole content, to compare before and after a command that must change nothing:
    /// sqlite3's `.dump`; for PostgreSQL the tables' columns, the indexes, and every table's
    /// rows in a fixed order (not pg_dump, whose identity values move on a rolled-back insert).
    static func dump(_ database: String) throws -> String {
        guard TestBackend.isPostgreSQL(database) else {
            return try runTool("/usr/bin/sqlite3", [database, ".dump"]).output
        }
        return try psql(
            database,
            """
            SELECT string_agg(format('%s.%s %s %s %s', table_name, column_name, data_type, is_nullable, column_default),
                              E'\\n' ORDER BY table_name, ordinal_position)
              FROM information_schema.columns WHERE table_schema = 'public';
            SELECT string_agg(indexdef, E'\\n' ORDER BY indexdef) FROM pg_indexes WHERE schemaname = 'public';
            SELECT string_agg(c.relname || E'\\n' || query_to_xml(
                       format('SELECT x::text AS r FROM %I AS x ORDER BY 1', c.relname), true, false, '')::text,
                       E'\\n' ORDER BY c.relname)
              FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind = 'r';
            """
        ).output
    }

    /// "ok" when the database is sound: SQLite's `PRAGMA integrity_check` (a killed writer must
    /// leave a sound file); PostgreSQL keeps its own files sound, so there it only checks that
    /// the database answers.
    static func integrityCheck(_ database: String) throws -> String {
        try value(database, TestBackend.isPostgreSQL(database) ? "SELECT 'ok'" : "PRAGMA integrity_check")
    }

    /// An SQL expression for the time `interval` ago ("6 days", "10 minutes") as the engine
    /// stores times: RFC 3339 text in SQLite, `timestamptz` in PostgreSQL.
    static func timeAgo(_ database: String, _ interval: String) -> String {
        TestBackend.isPostgreSQL(database)
            ? "(now() - interval '\(interval)')"
            : "strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now', '-\(interval)')"
    }

    /// An SQL expression for the time `seconds` (an SQL expression) seconds ago, stored as
    /// `timeAgo` stores it.
    static func secondsAgo(_ database: String, _ seconds: String) -> String {
        TestBackend.isPostgreSQL(database)
            ? "(now() - (\(seconds)) * interval '1 second')"
            : "strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now', '-' || (\(seconds)) || ' seconds')"
    }

    /// Ends the claims of processes killed with SIGKILL, standing for their lease's time
    /// passing: on PostgreSQL a killed keysat-deliver run's claims (lease `--timeout` + 50 ms +
    /// 60 s) and an interrupted `endpoint test`'s (until its row is due) keep their deliveries
    /// from other runs until their leases end, so a test that kills one and wants the next run
    /// to send everything at once ends them first. SQLite has no leases (its runs take the run
    /// lock, which a killed process releases): nothing to do.
    static func endLeases(_ database: String) throws {
        guard TestBackend.isPostgreSQL(database) else { return }
        try execute(
            database,
            "UPDATE webhook_deliveries SET lease_expires_at = now() - interval '1 second' WHERE lease_expires_at IS NOT NULL")
        // With them, the killed runs' counts of attempts in flight, which expire as they do.
        try execute(database, "UPDATE keysat_webhooks_in_flight SET expires_at = now() - interval '1 second'")
    }

    /// An SQL expression for the text at `path` ("data.tag") in the JSON text of `column`:
    /// SQLite's `json_extract`, PostgreSQL's `#>>` on the text read as jsonb (the column is
    /// text there: signatures cover its exact bytes).
    static func jsonField(_ database: String, _ column: String, _ path: String) -> String {
        let keys = path.split(separator: ".")
        return TestBackend.isPostgreSQL(database)
            ? "(\(column)::jsonb #>> '{\(keys.joined(separator: ","))}')"
            : "json_extract(\(column), '$.\(keys.joined(separator: "."))')"
    }

    /// `column`, a time, as the programs write it (RFC 3339, six digits of microseconds):
    /// PostgreSQL's own text of a `timestamptz` drops trailing zeros (".69727+00:00").
    static func programTime(_ database: String, _ column: String) -> String {
        TestBackend.isPostgreSQL(database) ? "keysat_rfc3339(\(column))" : column
    }

    /// The column that numbers rows in the order they were written: SQLite's rowid,
    /// PostgreSQL's identity column `seq`.
    static func writtenOrder(_ database: String) -> String {
        TestBackend.isPostgreSQL(database) ? "seq" : "rowid"
    }

    /// An SQL expression for `count` times the character `character`.
    static func repeated(_ database: String, _ character: Character, _ count: Int) -> String {
        TestBackend.isPostgreSQL(database)
            ? "repeat('\(character)', \(count))" : "printf('%.*c', \(count), '\(character)')"
    }

    /// An SQL expression for the character with code point `code`: SQLite's `char`,
    /// PostgreSQL's `chr` (which refuses 0: text cannot hold NUL there).
    static func character(_ database: String, _ code: Int) -> String {
        TestBackend.isPostgreSQL(database) ? "chr(\(code))" : "char(\(code))"
    }

    /// An SQL expression for a random 32-digit hexadecimal id.
    static func randomID(_ database: String) -> String {
        TestBackend.isPostgreSQL(database)
            ? "replace(gen_random_uuid()::text, '-', '')" : "lower(hex(randomblob(16)))"
    }

    /// Runs `sql` with foreign keys not enforced, as Keysat's own code runs (SQLite's
    /// `PRAGMA foreign_keys = OFF`; PostgreSQL's schema has no foreign key to enforce).
    static func executeWithoutForeignKeys(_ database: String, _ sql: String) throws {
        try execute(database, TestBackend.isPostgreSQL(database) ? sql : "PRAGMA foreign_keys = OFF; " + sql)
    }

    /// "" when no row breaks a foreign key (`PRAGMA foreign_key_check`); PostgreSQL's schema
    /// has none, as SQLite does not enforce Keysat's.
    static func foreignKeyCheck(_ database: String) throws -> String {
        TestBackend.isPostgreSQL(database) ? "" : try value(database, "PRAGMA foreign_key_check")
    }

    /// Makes every insert of a delivery for `endpoint` fail with "injected failure": a trigger
    /// named `fail_insert`.
    static func failInserts(_ database: String, endpoint: String) throws {
        try execute(
            database,
            TestBackend.isPostgreSQL(database)
                ? """
                CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql
                    AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$;
                CREATE TRIGGER fail_insert BEFORE INSERT ON webhook_deliveries FOR EACH ROW
                    WHEN (NEW.endpoint_id = '\(endpoint)') EXECUTE FUNCTION fail_insert();
                """
                : """
                CREATE TRIGGER fail_insert BEFORE INSERT ON webhook_deliveries
                WHEN NEW.endpoint_id = '\(endpoint)' BEGIN SELECT RAISE(ABORT, 'injected failure'); END;
                """)
    }

    /// sqlite3 with `sql` on its standard input (a statement may be longer than an argument
    /// may), stopping at the first error.
    private static func sqlite3(_ arguments: [String], _ sql: String) throws -> ProcessResult {
        let result = try runTool(
            "/usr/bin/sqlite3", ["-bail", "-cmd", ".timeout 5000"] + arguments, stdin: Data(sql.utf8))
        guard result.status == 0 else {
            throw NSError(
                domain: "sqlite3", code: Int(result.status), userInfo: [NSLocalizedDescriptionKey: result.stderr])
        }
        return result
    }

    /// psql with `sql` on its standard input, unaligned and without headers, stopping at the
    /// first error; times in UTC, as the programs write them.
    private static func psql(_ database: String, _ sql: String) throws -> ProcessResult {
        let result = try runTool(
            PostgresTestCluster.binary("psql"), ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", database],
            stdin: Data(sql.utf8), environment: ["PGTZ": "UTC"])
        guard result.status == 0 else {
            throw NSError(
                domain: "psql", code: Int(result.status), userInfo: [NSLocalizedDescriptionKey: result.stderr])
        }
        return result
    }
}

/// A database made by `keysat-webhooks init`, with helpers for endpoints.
struct TestDatabase {
    let path: String

    /// The location `--db` takes (a file path, or a `postgresql://` URI under
    /// KEYSAT_TEST_BACKEND=postgresql).
    init(in scratch: Scratch, name: String = "keysat.db") throws {
        path = try scratch.database(name)
        let result = try runTool("keysat-webhooks", ["init", "--db", path])
        XCTAssertEqual(result.status, 0, result.stderr)
    }

    /// Adds an endpoint and returns its id.
    @discardableResult
    func addEndpoint(_ url: String = "http://127.0.0.1:9/hook", events: [String] = []) throws -> String {
        // Tests add the same URL for several endpoints on purpose.
        var arguments = ["endpoint", "add", url, "--allow-duplicate", "--db", path, "--json"]
        for event in events { arguments += ["--event", event] }
        let result = try runTool("keysat-webhooks", arguments)
        XCTAssertEqual(result.status, 0, result.stderr)
        let object = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
        return object?["id"] as? String ?? ""
    }

    func enqueue(_ arguments: [String], stdin: Data? = nil) throws -> ProcessResult {
        try runTool("keysat-enqueue", ["--db", path] + arguments, stdin: stdin)
    }

    /// keysat-deliver started in the background on this database (loopback allowed), its
    /// standard output to `stdout` (a file path) or discarded.
    func startDeliver(_ arguments: [String], stdout: String? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.path("keysat-deliver"))
        process.arguments = ["--db", path, "--allow-network", "127.0.0.1"] + arguments
        if let stdout {
            FileManager.default.createFile(atPath: stdout, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdout))
        } else {
            process.standardOutput = FileHandle.nullDevice
        }
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Another program keeping the database open (as Keysat does), so the WAL and SHM files
    /// stay when the tools close it. Terminate the process when done.
    func holdOpen() throws -> Process {
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        holder.arguments = [
            "python3", "-c",
            "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1]); c.execute('SELECT 1 FROM webhook_endpoints').fetchall(); time.sleep(120)",
            path,
        ]
        try holder.run()
        usleep(300_000)
        return holder
    }

    /// The location for programs run as the user `uid`: the same file for SQLite; for
    /// PostgreSQL the same database with a copy of the passfile that user owns (libpq reads only
    /// a passfile its user owns and others cannot read).
    func location(forUser uid: uid_t, in scratch: Scratch) throws -> String {
        guard TestBackend.isPostgreSQL(path),
            let range = path.range(of: #"passfile=[^&]*"#, options: .regularExpression)
        else { return path }
        let passfile = String(path[range].dropFirst("passfile=".count))
        let copy = scratch.file("pgpass-\(uid)")
        try FileManager.default.copyItem(atPath: passfile, toPath: copy)
        guard chown(copy, uid, gid_t(uid)) == 0, chmod(copy, 0o600) == 0 else {
            throw NSError(domain: "chown", code: Int(errno))
        }
        return path.replacingCharacters(in: range, with: "passfile=" + copy)
    }

    func count(_ table: String = "webhook_deliveries", where condition: String = "true") throws -> Int {
        Int(try SQL.value(path, "SELECT count(*) FROM \(table) WHERE \(condition)")) ?? -1
    }
}

/// HMAC-SHA256 computed by Python's hmac module: an implementation independent of the tool's.
enum IndependentHMAC {
    static func sha256(key: Data, message: Data) throws -> Data {
        let script =
            "import hmac, hashlib, sys; k = bytes.fromhex(sys.argv[1]); sys.stdout.buffer.write(hmac.new(k, sys.stdin.buffer.read(), hashlib.sha256).digest())"
        let result = try runTool(
            "/usr/bin/env", ["python3", "-c", script, key.map { String(format: "%02x", $0) }.joined()],
            stdin: message)
        XCTAssertEqual(result.status, 0, result.stderr)
        return result.stdout
    }
}

/// A database made by Keysat itself (its schema and rows, Fixtures/keysat-schema.sql), with the
/// sqlite3 tool; mode 0600, as the service keeps it.
func makeKeysatDatabase(at path: String) throws {
    let schema = Binaries.packageRoot.appendingPathComponent("Tests/EndToEndTests/Fixtures/keysat-schema.sql")
        .path
    let made = try runTool("/usr/bin/sqlite3", [path, ".read \(schema)"])
    XCTAssertEqual(made.status, 0, made.stderr)
    XCTAssertEqual(chmod(path, 0o600), 0)
}
