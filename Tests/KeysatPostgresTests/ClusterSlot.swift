import KeysatTestSupport
import XCTest

@testable import KeysatPostgres

/// The cluster of one test class: started in its `class func setUp`, stopped in its
/// `class func tearDown`, and handed to each test (or the reason it cannot be). These classes
/// test the connection itself (settings, passwords, the server stopping), so each has a cluster
/// of its own rather than the process's shared one.
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

    /// The running cluster; skips the test only when the server's binaries are missing and
    /// PostgreSQL was not asked for (KEYSAT_TEST_BACKEND=postgresql makes that a failure).
    func cluster() throws -> PostgresTestCluster {
        switch self {
        case .running(let cluster): return cluster
        case .unavailable(.serverMissing(let reason)) where TestBackend.name != "postgresql":
            throw XCTSkip("PostgreSQL server binaries not installed (scripts/setup.sh test): \(reason)")
        case .unavailable(let failure):
            XCTFail("\(failure)")
            throw failure
        case .notStarted:
            throw PostgresTestCluster.StartFailure.failed("the class's setUp did not start a cluster")
        }
    }

    func stop() {
        if case .running(let cluster) = self { cluster.stop() }
    }
}

extension PostgresTestCluster {
    func connect(settings: PostgresSessionSettings = PostgresSessionSettings()) throws -> PostgresConnection {
        try PostgresConnection(connectionString, settings: settings)
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
}
