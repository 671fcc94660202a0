import Foundation
import KeysatPostgres

/// A throw-away PostgreSQL cluster: scripts/pg-test-cluster.sh's initdb + pg_ctl in a folder
/// of its own under /tmp, reached over 127.0.0.1 with a SCRAM password in a passfile.
///
/// Test classes about the connection itself start one of their own (`start()`); tests that
/// only need a queue use the process's one (`shared`) and a fresh database each
/// (`createDatabase()`).
public final class PostgresTestCluster: Sendable {
    public let directory: String
    /// Keyword/value pairs (host, port, dbname, user, passfile, sslmode).
    public let connectionString: String
    public let port: String

    public static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/pg-test-cluster.sh").path

    /// Why a cluster could not be started.
    public enum StartFailure: Error, CustomStringConvertible {
        /// The server's binaries are not installed (the script's exit 69).
        case serverMissing(String)
        /// Anything else.
        case failed(String)

        public var description: String {
            switch self {
            case .serverMissing(let reason):
                "PostgreSQL server binaries not installed (scripts/setup.sh test installs them): \(reason)"
            case .failed(let reason): "cannot start a PostgreSQL test cluster: \(reason)"
            }
        }
    }

    private init(directory: String, connectionString: String, port: String) {
        self.directory = directory
        self.connectionString = connectionString
        self.port = port
    }

    public static func start() throws -> PostgresTestCluster {
        stopOrphans()
        // Short, for the Unix socket's path (at most 107 bytes).
        let directory = "/tmp/keysat-pg-\(getpid())-\(UUID().uuidString.prefix(8))"
        let result = try run(["start", directory])
        switch result.status {
        case 0: break
        case 69: throw StartFailure.serverMissing(result.stderr)
        default:
            throw StartFailure.failed("pg-test-cluster.sh start exited \(result.status): \(result.stderr)")
        }
        let line = result.stdout.split(separator: "\n").first.map(String.init) ?? ""
        let port = try String(contentsOfFile: directory + "/port", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return PostgresTestCluster(directory: directory, connectionString: line, port: port)
    }

    public func stop() {
        _ = try? PostgresTestCluster.run(["stop", directory])
    }

    // MARK: - Databases

    /// The `postgresql://` URI of `database` as the role `keysat`, its password in the passfile:
    /// the form `--db` takes, with no password in it.
    public func uri(database: String) -> String {
        "postgresql://keysat@127.0.0.1:\(port)/\(database)?passfile=\(directory)/pgpass&sslmode=disable"
    }

    /// The superuser's session over the Unix socket (trust), for creating and dropping
    /// databases.
    func connectAsSuperuser() throws -> PostgresConnection {
        try PostgresConnection("host=\(directory) port=\(port) user=postgres dbname=postgres")
    }

    /// Creates an empty database owned by `keysat`, named `keysat_t<n>`, and returns its name.
    public func createDatabase() throws -> String {
        let name = "keysat_t\(PostgresTestCluster.databaseNumbers.next())"
        // CREATE DATABASE takes no parameters; the name is ours, made of [a-z0-9_].
        try connectAsSuperuser().execute("CREATE DATABASE \(name) OWNER keysat")
        return name
    }

    /// Drops a database made by `createDatabase`, ending the sessions still in it (a run
    /// left in the background by a test).
    public func dropDatabase(_ name: String) {
        _ = try? connectAsSuperuser().execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    private static let databaseNumbers = Counter()

    // MARK: - The process's cluster

    /// The cluster of this test process: started on first use, stopped when the process exits.
    /// A failure to start is kept and thrown to every caller, so each test says why.
    public static func shared() throws -> PostgresTestCluster {
        try sharedSlot.cluster()
    }

    private static let sharedSlot = SharedSlot()

    /// The path of one of the server's client programs (`psql`), from the folder the script
    /// uses: `$PG_BIN`, else the newest /usr/lib/postgresql/*/bin; else found on `PATH`.
    public static func binary(_ name: String) -> String {
        if let folder = ProcessInfo.processInfo.environment["PG_BIN"], !folder.isEmpty {
            return folder + "/" + name
        }
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .compactMap { Int($0) }.sorted()
        if let newest = versions.last {
            let path = "/usr/lib/postgresql/\(newest)/bin/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return "/usr/bin/" + name
    }

    // MARK: - Running the script

    /// Stops the clusters of test processes that were killed before they could stop theirs
    /// (their folder is named after their process ID), so that servers do not pile up.
    private static func stopOrphans() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? []
        for name in names where name.hasPrefix("keysat-pg-") {
            let parts = name.split(separator: "-")
            guard parts.count >= 3, let pid = Int32(parts[2]), pid != getpid() else { continue }
            if kill(pid, 0) == -1 && errno == ESRCH { _ = try? run(["stop", "/tmp/" + name]) }
        }
    }

    /// Runs the script with its output in files, waiting with waitpid(2).
    ///
    /// Not Foundation's `Process`: its `waitUntilExit()` never returned here once the script
    /// had started the server (the script a zombie, the test hung), whether the output went to
    /// a pipe or to files.
    private static func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
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
        let spawned = posix_spawn(&pid, script, &actions, nil, argv, environ)
        guard spawned == 0 else {
            throw StartFailure.failed("cannot run \(script): \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        // WIFEXITED and WEXITSTATUS are macros Swift does not import.
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let read = { (path: String) in (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        return (code, read(paths[0]), read(paths[1]))
    }
}

/// The process's cluster, started once under a lock. `@unchecked Sendable`: `lock` guards
/// `state`.
private final class SharedSlot: @unchecked Sendable {
    private let lock = NSLock()
    private var state: Result<PostgresTestCluster, any Error>?

    func cluster() throws -> PostgresTestCluster {
        lock.lock()
        defer { lock.unlock() }
        if state == nil {
            state = Result { try PostgresTestCluster.start() }
            if case .success = state {
                // XCTest ends the process with exit(3) after the last test: atexit handlers run.
                atexit { SharedSlot.stopAtExit() }
            }
        }
        return try state!.get()
    }

    /// Stops the cluster; for atexit, whose handler is a C function that captures nothing.
    static func stopAtExit() {
        PostgresTestCluster.sharedCluster?.stop()
    }

    var started: PostgresTestCluster? {
        lock.lock()
        defer { lock.unlock() }
        return try? state?.get()
    }
}

extension PostgresTestCluster {
    fileprivate static var sharedCluster: PostgresTestCluster? { sharedSlot.started }
}

/// Numbers from 1 up, one per call. `@unchecked Sendable`: `lock` guards `last`.
private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var last = 0

    func next() -> Int {
        lock.lock()
        defer { lock.unlock() }
        last += 1
        return last
    }
}
