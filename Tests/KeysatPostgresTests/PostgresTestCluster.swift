import Foundation
import XCTest

@testable import KeysatPostgres

/// A throw-away PostgreSQL cluster: scripts/pg-test-cluster.sh's initdb + pg_ctl in a folder
/// of its own under /tmp, reached over 127.0.0.1 with a SCRAM password in a passfile.
final class PostgresTestCluster {
    let directory: String
    /// Keyword/value pairs (host, port, dbname, user, passfile, sslmode).
    let connectionString: String

    static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/pg-test-cluster.sh").path

    /// Why a cluster could not be started.
    enum StartFailure: Error {
        /// The server's binaries are not installed (the script's exit 69): the tests skip.
        case serverMissing(String)
        /// Anything else: the tests fail.
        case failed(String)
    }

    private init(directory: String, connectionString: String) {
        self.directory = directory
        self.connectionString = connectionString
    }

    static func start() throws -> PostgresTestCluster {
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
        return PostgresTestCluster(directory: directory, connectionString: line)
    }

    func stop() {
        _ = try? PostgresTestCluster.run(["stop", directory])
    }

    /// Stops the clusters of test processes that were killed before their class's tearDown
    /// (their folder is named after their process ID), so that servers do not pile up.
    private static func stopOrphans() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? []
        for name in names where name.hasPrefix("keysat-pg-") {
            let parts = name.split(separator: "-")
            guard parts.count >= 3, let pid = Int32(parts[2]), pid != getpid() else { continue }
            if kill(pid, 0) == -1 && errno == ESRCH { _ = try? run(["stop", "/tmp/" + name]) }
        }
    }

    /// The value of `keyword` in the connection string (e.g. the port).
    func value(_ keyword: String) -> String? {
        PostgresConnectionString.keywordPairs(connectionString).first { $0.key == keyword }?.value
    }

    /// The connection string with `changes` applied: a value replaces the keyword's, `nil`
    /// removes it.
    func connectionString(with changes: [String: String?]) -> String {
        var pairs = PostgresConnectionString.keywordPairs(connectionString).filter { changes[$0.key] == nil }
        for (key, value) in changes.sorted(by: { $0.key < $1.key }) {
            if let value { pairs.append((key, value)) }
        }
        return pairs.map { "\($0.key)='\($0.value)'" }.joined(separator: " ")
    }

    func connect(settings: PostgresSessionSettings = PostgresSessionSettings()) throws -> PostgresConnection {
        try PostgresConnection(connectionString, settings: settings)
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

/// The cluster of one test class: started in its `class func setUp`, stopped in its
/// `class func tearDown`, and handed to each test (or the reason it cannot be).
enum ClusterSlot {
    case notStarted
    case running(PostgresTestCluster)
    case unavailable(PostgresTestCluster.StartFailure)

    static func start() -> ClusterSlot {
        do {
            return .running(try PostgresTestCluster.start())
        } catch let failure as PostgresTestCluster.StartFailure {
            return .unavailable(failure)
        } catch {
            return .unavailable(.failed("\(error)"))
        }
    }

    /// The running cluster; skips the test only when the server's binaries are missing.
    func cluster() throws -> PostgresTestCluster {
        switch self {
        case .running(let cluster): return cluster
        case .unavailable(.serverMissing(let reason)):
            throw XCTSkip("PostgreSQL server binaries not installed (scripts/setup.sh test): \(reason)")
        case .unavailable(.failed(let reason)):
            XCTFail("cannot start a PostgreSQL test cluster: \(reason)")
            throw PostgresTestCluster.StartFailure.failed(reason)
        case .notStarted:
            throw PostgresTestCluster.StartFailure.failed("the class's setUp did not start a cluster")
        }
    }

    func stop() {
        if case .running(let cluster) = self { cluster.stop() }
    }
}
