import Foundation

/// The backend the suites that run on both are run against: `KEYSAT_TEST_BACKEND=sqlite`
/// (the default) or `postgresql` (`make test` runs them once with each).
///
/// One suite, one parameter, as River's `riverdrivertest`: a test asks for a fresh database
/// location (`freshLocation`) and passes it where `--db` or `Backends.open` takes one; it never
/// chooses the engine itself.
public enum TestBackend: String, Sendable {
    case sqlite
    case postgresql

    /// The variable's value; an unknown value is reported by `current()`, not guessed.
    public static let variable = "KEYSAT_TEST_BACKEND"

    /// The backend chosen for this process.
    ///
    /// - Throws: `TestBackendFailure` when the variable names no backend.
    public static func current() throws -> TestBackend {
        let value = ProcessInfo.processInfo.environment[variable] ?? ""
        if value.isEmpty { return .sqlite }
        guard let backend = TestBackend(rawValue: value) else {
            throw TestBackendFailure("\(variable)=\(value): expected sqlite or postgresql")
        }
        return backend
    }

    /// `current()`, or SQLite when the variable is wrong (for reasons in skip messages; the
    /// tests themselves fail on it through `current()`).
    public static var name: String { (try? current())?.rawValue ?? "sqlite" }

    /// A location for a database nobody has made yet: for SQLite a file named `name` in
    /// `directory` (not created); for PostgreSQL an empty database of its own on the process's
    /// cluster (started on first use), as a `postgresql://` URI whose password is in a passfile.
    ///
    /// - Returns: the location, and for PostgreSQL the database's name (to drop it with
    ///   `dropDatabase`).
    /// - Throws: when PostgreSQL is chosen and no cluster can be started, including when the
    ///   server's binaries are missing: a run asked to test PostgreSQL fails, it does not skip.
    public static func freshLocation(in directory: String, name: String) throws -> (location: String, database: String?) {
        switch try current() {
        case .sqlite:
            return (directory + "/" + name, nil)
        case .postgresql:
            let cluster = try PostgresTestCluster.shared()
            let database = try cluster.createDatabase()
            return (cluster.uri(database: database), database)
        }
    }

    /// Drops a database made by `freshLocation` (PostgreSQL), ending the sessions left in it.
    public static func dropDatabase(_ database: String) {
        guard let cluster = try? PostgresTestCluster.shared() else { return }
        cluster.dropDatabase(database)
    }

    /// Whether `location` names a PostgreSQL database (`postgresql://` or `postgres://`).
    public static func isPostgreSQL(_ location: String) -> Bool {
        let lowered = location.prefix(13).lowercased()
        return lowered.hasPrefix("postgresql://") || lowered.hasPrefix("postgres://")
    }
}

/// A wrong `KEYSAT_TEST_BACKEND`.
public struct TestBackendFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
