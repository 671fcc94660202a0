import Foundation
import XCTest

/// The three programs with `--db postgresql://…` (issue 21), run as built against a real
/// server: scripts/pg-test-cluster.sh's throw-away cluster, one per class, one database per test.
final class PostgresCommandLineTests: XCTestCase {
    nonisolated(unsafe) private static var slot = CommandLineCluster.Slot.notStarted

    override class func setUp() {
        super.setUp()
        slot = CommandLineCluster.Slot.start()
    }

    override class func tearDown() {
        slot.stop()
        slot = .notStarted
        super.tearDown()
    }

    /// A fresh, empty database of the cluster for this test, and its URI (password in a passfile).
    private func freshDatabase() throws -> (cluster: CommandLineCluster, uri: String) {
        let cluster = try Self.slot.cluster()
        return (cluster, try cluster.createDatabase())
    }

    // MARK: - Passwords

    func testAPasswordInDbOnTheCommandLineIsRefusedByEveryProgramAndNothingChanges() throws {
        let (cluster, uri) = try freshDatabase()
        let secret = "pa55-\(UUID().uuidString.prefix(8))"
        let withPassword = [
            uri.replacingOccurrences(of: "postgresql://keysat@", with: "postgresql://keysat:\(secret)@"),
            uri + "&password=\(secret)",
            uri.replacingOccurrences(of: "postgresql://keysat@", with: "POSTGRES://keysat:\(secret)@"),
        ]
        for database in withPassword {
            let runs: [(String, [String])] = [
                ("keysat-webhooks", ["init", "--db", database]),
                ("keysat-webhooks", ["--db", database, "stats"]),
                ("keysat-webhooks", ["units", "--db=\(database)", "--bindir", "/usr/bin"]),
                ("keysat-enqueue", ["--db", database, "license.issued", "{}"]),
                ("keysat-deliver", ["--db=\(database)"]),
            ]
            for (program, arguments) in runs {
                let result = try runTool(program, arguments)
                let what = "\(program) \(arguments.first ?? "")"
                XCTAssertEqual(result.status, 64, "\(what): \(result.stderr)")
                XCTAssertTrue(result.stderr.contains("PGPASSFILE"), "\(what): \(result.stderr)")
                XCTAssertTrue(result.stderr.contains("/etc/default/keysat-webhooks"), result.stderr)
                XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
                XCTAssertFalse(
                    result.stderr.contains(secret), "\(what) printed the password: \(result.stderr)")
                XCTAssertEqual(result.output, "", what)
            }
        }
        XCTAssertEqual(try cluster.tables(of: uri), [], "a refused command created tables")
    }

    func testMessagesAndOutputNeverShowThePasswordOfKeysatDB() throws {
        let (cluster, uri) = try freshDatabase()
        let password = try cluster.password()
        let inEnvironment = uri.replacingOccurrences(
            of: "postgresql://keysat@", with: "postgresql://keysat:\(password)@")
        let environment = ["KEYSAT_DB": inEnvironment, "PGPASSFILE": "/nonexistent"]

        // The environment may hold one: init works with it, and prints the URI without it.
        let made = try runTool("keysat-webhooks", ["init"], environment: environment)
        XCTAssertEqual(made.status, 0, made.stderr)
        XCTAssertEqual(made.output, uri + "\n")
        let json = try runTool("keysat-webhooks", ["init", "--json"], environment: environment)
        XCTAssertEqual(json.status, 0, json.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: json.stdout) as? [String: Any])
        XCTAssertEqual(object["database"] as? String, uri)

        // Every program, succeeding or failing, on a good and a wrong password.
        let wrong = "wr0ng-\(UUID().uuidString.prefix(8))"
        let wrongEnvironment = [
            "KEYSAT_DB": uri.replacingOccurrences(
                of: "postgresql://keysat@", with: "postgresql://keysat:\(wrong)@"),
            "PGPASSFILE": "/nonexistent",
        ]
        let missingDatabase = [
            "KEYSAT_DB": inEnvironment.replacingOccurrences(of: "/keysat_", with: "/missing_"),
            "PGPASSFILE": "/nonexistent",
        ]
        for (label, env, secret) in [
            ("good", environment, password), ("wrong", wrongEnvironment, wrong),
            ("missing database", missingDatabase, password),
        ] {
            for (program, arguments) in [
                ("keysat-webhooks", ["init"]), ("keysat-webhooks", ["stats"]),
                ("keysat-webhooks", ["init", "--group", "root"]), ("keysat-webhooks", ["units"]),
                ("keysat-enqueue", ["license.issued", "{}"]), ("keysat-deliver", ["-v", "--dry-run"]),
                ("keysat-deliver", ["-v", "--json", "--log-level", "debug"]),
            ] {
                let result = try runTool(program, arguments, environment: env)
                let what = "\(label): \(program) \(arguments.joined(separator: " "))"
                XCTAssertFalse(result.stderr.contains(secret), "\(what): \(result.stderr)")
                XCTAssertFalse(result.output.contains(secret), "\(what): \(result.output)")
                if label != "good" { XCTAssertNotEqual(result.status, 0, what) }
            }
        }
        // A unit file is readable by all: a password from KEYSAT_DB is refused there.
        let units = try runTool(
            "keysat-webhooks", ["units", "--bindir", "/usr/bin"], environment: environment)
        XCTAssertEqual(units.status, 64, units.stderr)
        XCTAssertTrue(units.stderr.contains("KEYSAT_DB"), units.stderr)
    }

    // MARK: - Options PostgreSQL cannot honour

    func testOptionsAPostgreSQLDatabaseCannotHonourAreRefusedAndChangeNothing() throws {
        let (cluster, uri) = try freshDatabase()
        let scratch = try Scratch()
        let runs: [(String, [String], String)] = [
            ("keysat-webhooks", ["init", "--db", uri, "--group", "root"], "--group"),
            ("keysat-webhooks", ["init", "--db", uri, "--repair"], "--repair"),
            ("keysat-deliver", ["--db", uri, "--lock-file", scratch.file("deliver.lock")], "--lock-file"),
            ("keysat-deliver", ["--db", uri, "--kick-file", scratch.file("kick")], "--kick-file"),
            (
                "keysat-enqueue", ["--db", uri, "--kick-file", scratch.file("kick"), "license.issued", "{}"],
                "--kick-file"
            ),
        ]
        for (program, arguments, option) in runs {
            let result = try runTool(program, arguments)
            XCTAssertEqual(result.status, 64, "\(program) \(option): \(result.stderr)")
            XCTAssertTrue(
                result.stderr.contains("'\(option)' does not apply to a PostgreSQL database: "),
                result.stderr)
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        }
        let lock = try runTool("keysat-deliver", ["--db", uri, "--lock-file", "/x"])
        XCTAssertTrue(lock.stderr.contains("leases"), lock.stderr)
        XCTAssertEqual(try cluster.tables(of: uri), [], "a refused init created tables")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), [])
        // The same options stay SQLite's own: a file, whichever backend the suite runs against.
        let file = scratch.file("keysat.db")
        XCTAssertEqual(try runTool("keysat-webhooks", ["init", "--db", file]).status, 0)
        let sqlite = try runTool("keysat-deliver", ["--db", file, "--lock-file", scratch.file("l")])
        XCTAssertEqual(sqlite.status, 0, sqlite.stderr)
    }

    // MARK: - init, deliver

    func testInitCreatesTheSchemaOnceAndPrintsTheURI() throws {
        let (cluster, uri) = try freshDatabase()
        let first = try runTool("keysat-webhooks", ["init", "--db", uri])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(first.output, uri + "\n")
        XCTAssertTrue(try cluster.tables(of: uri).contains("webhook_deliveries"))
        let again = try runTool("keysat-webhooks", ["init", "--db", uri, "--json"])
        XCTAssertEqual(again.status, 0, again.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: again.stdout) as? [String: Any])
        XCTAssertEqual(object["database"] as? String, uri)
        XCTAssertEqual(object["adopted_keysat_database"] as? Bool, false)
        // KEYSAT_DB and the scheme in any case name the same database.
        let fromEnvironment = try runTool("keysat-webhooks", ["init"], environment: ["KEYSAT_DB": uri])
        XCTAssertEqual(fromEnvironment.status, 0, fromEnvironment.stderr)
        let upper = "POSTGRESQL" + uri.dropFirst("postgresql".count)
        XCTAssertEqual(try runTool("keysat-webhooks", ["init", "--db", upper]).status, 0)
    }

    func testDeliverTakesNoLockOnPostgreSQLAndRunsBesideAnotherRun() throws {
        let (_, uri) = try freshDatabase()
        XCTAssertEqual(try runTool("keysat-webhooks", ["init", "--db", uri]).status, 0)
        let scratch = try Scratch()
        // A lingering run and a second run at once: the second is not turned away by a lock.
        let lingering = try startDeliver(uri, ["--linger", "2"], in: scratch)
        usleep(500_000)
        let second = try runTool("keysat-deliver", ["--db", uri, "--json", "-v"])
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertFalse(second.output.contains("skipped_run"), second.output)
        XCTAssertFalse(second.stderr.contains("lock"), second.stderr)
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: second.stdout) as? [String: Any])
        XCTAssertEqual(summary["attempted"] as? Int, 0)
        lingering.process.waitUntilExit()
        XCTAssertEqual(lingering.process.terminationStatus, 0, lingering.stderr())
        // No lock or kick file was made anywhere it could be named after the URI.
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted(), ["err", "out"])
    }

    /// Five hosts' `init` and two runs starting together on an empty database: the schema is
    /// applied once, under the advisory lock; no process fails or deadlocks (a run that finds
    /// no schema yet is refused with 78, never half a schema).
    func testFiveInitsAndRunsStartingTogetherApplyTheSchemaOnce() throws {
        let (cluster, uri) = try freshDatabase()
        let programs = Array(repeating: ("keysat-webhooks", ["init", "--db", uri]), count: 5)
            + Array(repeating: ("keysat-deliver", ["--db", uri]), count: 2)
        let processes = try programs.map { program, arguments -> Process in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Binaries.path(program))
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            return process
        }
        for process in processes { try process.run() }
        for process in processes { process.waitUntilExit() }
        XCTAssertEqual(processes.prefix(5).map(\.terminationStatus), [0, 0, 0, 0, 0])
        for run in processes.suffix(2) { XCTAssertTrue([0, 78].contains(run.terminationStatus), "\(run.terminationStatus)") }
        XCTAssertEqual(try cluster.tables(of: uri).filter { $0 == "keysat_webhooks_schema" }.count, 1)
        // Each step once: as many rows as steps, numbered 1 to the last.
        XCTAssertEqual(
            try SQL.value(
                uri, "SELECT CASE WHEN min(version) = 1 AND count(*) = max(version) THEN count(*) ELSE 0 END FROM keysat_webhooks_schema"),
            try SQL.value(uri, "SELECT max(version) FROM keysat_webhooks_schema"))
        XCTAssertNotEqual(try SQL.value(uri, "SELECT count(*) FROM keysat_webhooks_schema"), "0")
        XCTAssertEqual(try runTool("keysat-deliver", ["--db", uri]).status, 0)
    }

    func testALingeringRunIsWokenByANotifyWellUnderASecond() throws {
        let (cluster, uri) = try freshDatabase()
        XCTAssertEqual(try runTool("keysat-webhooks", ["init", "--db", uri]).status, 0)
        let scratch = try Scratch()
        let run = try startDeliver(uri, ["--linger", "4", "--log-level", "debug", "--json"], in: scratch)
        // The run listens before its first round; a round on an empty queue takes milliseconds.
        try waitUntil(seconds: 10) { try cluster.listeners(of: uri) > 0 }
        usleep(300_000)
        let sent = Date()
        try cluster.psql(uri, "NOTIFY keysat_webhooks")
        try waitUntil(seconds: 3) { run.stderr().contains("going round again") }
        let latency = Date().timeIntervalSince(sent)
        XCTAssertLessThan(latency, 0.5, "woken \(latency) s after the NOTIFY was sent")
        run.process.waitUntilExit()
        XCTAssertEqual(run.process.terminationStatus, 0, run.stderr())
        let summary = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run.outputPath)))
                as? [String: Any])
        XCTAssertEqual(summary["rounds"] as? Int, 2)
    }

    // MARK: - Enqueue to delivery (needs the backend's endpoint and enqueue parts)

    func testAnEnqueuedEventWakesALingeringRunAndIsDeliveredOnce() throws {
        let (_, uri) = try freshDatabase()
        XCTAssertEqual(try runTool("keysat-webhooks", ["init", "--db", uri]).status, 0)
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        try addEndpointOrSkip(uri, receiver.url("/hook"))
        let run = try startDeliver(uri, ["--linger", "5", "--log-level", "debug"], in: scratch)
        usleep(700_000)
        let sent = Date()
        let queued = try runTool("keysat-enqueue", ["--db", uri, "license.issued", #"{"n":1}"#])
        XCTAssertEqual(queued.status, 0, queued.stderr)
        let id = queued.output.trimmingCharacters(in: .whitespacesAndNewlines)
        try waitUntil(seconds: 5) { try !receiver.requests().isEmpty }
        XCTAssertLessThan(Date().timeIntervalSince(sent), 1.5, "a NOTIFY wakes the lingering run")
        run.process.terminate()
        run.process.waitUntilExit()
        XCTAssertEqual(try receiver.requests().map(\.deliveryID), [id])
    }

    func testKickSpawnStartsOneRunOnPostgreSQLWithTheURIKeptOffItsCommandLine() throws {
        let (cluster, uri) = try freshDatabase()
        XCTAssertEqual(try runTool("keysat-webhooks", ["init", "--db", uri]).status, 0)
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        try addEndpointOrSkip(uri, receiver.url("/hook"))
        let password = try cluster.password()
        let environment = [
            "KEYSAT_DB": uri.replacingOccurrences(
                of: "postgresql://keysat@", with: "postgresql://keysat:\(password)@"),
            "KEYSAT_KICK": "spawn", "XDG_RUNTIME_DIR": scratch.path,
            "KEYSAT_DEFAULTS_FILE": "/nonexistent",
        ]
        var ids: [String] = []
        for index in 0..<5 {
            let queued = try runTool(
                "keysat-enqueue", ["license.issued", "{\"n\":\(index)}"], environment: environment)
            XCTAssertEqual(queued.status, 0, queued.stderr)
            XCTAssertFalse(queued.stderr.contains(password), queued.stderr)
            ids.append(queued.output.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        try waitUntil(seconds: 10) { try receiver.requests().count >= ids.count }
        XCTAssertEqual(Set(try receiver.requests().map(\.deliveryID)), Set(ids))
        XCTAssertEqual(try receiver.requests().count, ids.count, "each delivered once")
        // The spawn guard is this user's, in the runtime folder; no kick file anywhere.
        let files = try FileManager.default.contentsOfDirectory(atPath: scratch.path)
        XCTAssertEqual(files.filter { $0.hasPrefix("keysat-deliver-spawn-") }.count, 1, "\(files)")
    }

    // MARK: - Units

    func testUnitsForPostgreSQLReachTheServerAndWriteNoDatabaseFolder() throws {
        let uri = "postgresql://keysat@db1.example/keysat?sslmode=verify-full&application_name=a%20b"
        let scratch = try Scratch()
        let made = try runTool(
            "keysat-webhooks", ["units", "--db", uri, "--bindir", "/usr/bin", "--output-dir", scratch.path])
        XCTAssertEqual(made.status, 0, made.stderr)
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted(),
            ["keysat-deliver.service", "keysat-deliver.timer"])
        let service = try String(contentsOfFile: scratch.file("keysat-deliver.service"), encoding: .utf8)
        let lines = service.split(separator: "\n").map(String.init)
        XCTAssertTrue(
            lines.contains("Environment=KEYSAT_DB=" + uri.replacingOccurrences(of: "%", with: "%%")), service)
        XCTAssertTrue(lines.contains("After=network-online.target postgresql.service"), service)
        XCTAssertTrue(lines.contains("ExecStart=/usr/bin/keysat-deliver --linger 1"), service)
        for absent in ["ReadWritePaths=", "StateDirectory=", "PrivateNetwork="] {
            XCTAssertFalse(lines.contains { $0.hasPrefix(absent) }, "\(absent) in \(service)")
        }
        // What systemd or sh would read otherwise is refused, as for a path.
        for bad in [uri + " x", uri + "&a=$HOME", uri + "&a='b'"] {
            XCTAssertEqual(
                try runTool("keysat-webhooks", ["units", "--db", bad, "--bindir", "/usr/bin"]).status, 64, bad
            )
        }
        // scripts/check-units.sh runs systemd-analyze verify on these units too.
    }

    // MARK: - Helpers

    private struct BackgroundRun {
        let process: Process
        let outputPath: String
        let errorPath: String
        func stderr() -> String { (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "" }
    }

    private func startDeliver(_ uri: String, _ arguments: [String], in scratch: Scratch) throws
        -> BackgroundRun
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.path("keysat-deliver"))
        process.arguments = ["--db", uri, "--allow-network", "127.0.0.1"] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: scratch.path)
        let out = scratch.file("out")
        let err = scratch.file("err")
        FileManager.default.createFile(atPath: out, contents: nil)
        FileManager.default.createFile(atPath: err, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        try process.run()
        return BackgroundRun(process: process, outputPath: out, errorPath: err)
    }

    /// Adds an endpoint, or skips the test while PostgreSQL's endpoint part is not merged.
    private func addEndpointOrSkip(_ uri: String, _ url: String) throws {
        let added = try runTool("keysat-webhooks", ["endpoint", "add", url, "--db", uri, "--json"])
        if added.status == 69, added.stderr.contains("not available on PostgreSQL yet") {
            throw XCTSkip("the PostgreSQL backend's endpoint part is not merged yet: \(added.stderr)")
        }
        XCTAssertEqual(added.status, 0, added.stderr)
    }

    private func waitUntil(seconds: Double, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while try !condition() {
            guard Date() < deadline else {
                XCTFail("not within \(seconds) s")
                return
            }
            usleep(5_000)
        }
    }
}

/// scripts/pg-test-cluster.sh's cluster, for the end-to-end tests (the unit tests' own helper
/// lives in a target these tests cannot import).
final class CommandLineCluster {
    let directory: String
    let port: String

    static let script = Binaries.packageRoot.appendingPathComponent("scripts/pg-test-cluster.sh").path

    private init(directory: String, port: String) {
        self.directory = directory
        self.port = port
    }

    enum Slot {
        case notStarted
        case running(CommandLineCluster)
        case serverMissing(String)
        case failed(String)

        static func start() -> Slot {
            // Short, for the Unix socket's path (at most 107 bytes).
            let directory = "/tmp/keysat-pg-\(getpid())-\(UUID().uuidString.prefix(8))"
            let result = CommandLineCluster.run(["start", directory])
            switch result.status {
            case 0:
                let port = (try? String(contentsOfFile: directory + "/port", encoding: .utf8)) ?? ""
                return .running(
                    CommandLineCluster(
                        directory: directory, port: port.trimmingCharacters(in: .whitespacesAndNewlines)))
            case 69: return .serverMissing(result.stderr)
            default: return .failed("pg-test-cluster.sh start exited \(result.status): \(result.stderr)")
            }
        }

        func cluster() throws -> CommandLineCluster {
            switch self {
            case .running(let cluster): return cluster
            case .serverMissing(let reason):
                throw XCTSkip("PostgreSQL server binaries not installed (scripts/setup.sh test): \(reason)")
            case .failed(let reason):
                XCTFail("cannot start a PostgreSQL test cluster: \(reason)")
                throw XCTSkip(reason)
            case .notStarted:
                throw XCTSkip("the class's setUp did not start a cluster")
            }
        }

        func stop() {
            if case .running(let cluster) = self { _ = CommandLineCluster.run(["stop", cluster.directory]) }
        }
    }

    /// A new database owned by the role keysat, and its URI (the script's, with its name).
    func createDatabase() throws -> String {
        let name = "keysat_" + UUID().uuidString.prefix(8).lowercased()
        try superuser("postgres", "CREATE DATABASE \(name) OWNER keysat")
        return "postgresql://keysat@127.0.0.1:\(port)/\(name)?passfile=\(directory)/pgpass&sslmode=disable"
    }

    /// The role keysat's password, from the passfile (for the tests that put it in KEYSAT_DB).
    func password() throws -> String {
        let line = try String(contentsOfFile: directory + "/pgpass", encoding: .utf8)
        return String(line.split(separator: ":").last ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The tables of the public schema of the database `uri` names.
    func tables(of uri: String) throws -> [String] {
        try superuser(
            name(of: uri), "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).split(separator: "\n").map(String.init)
    }

    /// Sessions listening on a channel in that database (a LISTEN shows as their last query
    /// until their next one; the run's first round follows at once, so also counted: any
    /// session of the role keysat).
    func listeners(of uri: String) throws -> Int {
        Int(
            try superuser(
                "postgres",
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '\(name(of: uri))' AND usename = 'keysat'"
            ).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// Runs `sql` in the database `uri` names, as the superuser.
    func psql(_ uri: String, _ sql: String) throws {
        _ = try superuser(name(of: uri), sql)
    }

    private func name(of uri: String) -> String {
        let path = uri.split(separator: "?")[0]
        return String(path.split(separator: "/").last ?? "")
    }

    @discardableResult
    private func superuser(_ database: String, _ sql: String) throws -> String {
        let psql =
            ["/usr/bin/psql"].first { FileManager.default.isExecutableFile(atPath: $0) }
            ?? ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).sorted()
            .last.map { "/usr/lib/postgresql/\($0)/bin/psql" } ?? "psql"
        let result = try runTool(
            psql,
            [
                "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", directory, "-p", port, "-U",
                "postgres",
                "-d", database, "-c", sql,
            ])
        guard result.status == 0 else {
            throw NSError(
                domain: "psql", code: Int(result.status), userInfo: [NSLocalizedDescriptionKey: result.stderr]
            )
        }
        return result.output
    }

    /// Runs the script with its output in files, waiting with waitpid(2) (Foundation's
    /// `Process` never returned once the script had started the server: see PostgresTestCluster).
    private static func run(_ arguments: [String]) -> (status: Int32, stderr: String) {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent(
            "pg-cluster-\(UUID().uuidString)")
        let paths = ["out", "err"].map { base.path + "." + $0 }
        defer { for path in paths { try? FileManager.default.removeItem(atPath: path) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, paths[0], O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, paths[1], O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv = ([script] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid = pid_t()
        guard posix_spawn(&pid, script, &actions, nil, argv, environ) == 0 else {
            return (70, "cannot run \(script)")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (code, (try? String(contentsOfFile: paths[1], encoding: .utf8)) ?? "")
    }
}
