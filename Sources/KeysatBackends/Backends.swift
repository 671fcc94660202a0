public import KeysatCore
public import KeysatStore
import KeysatPostgres

/// Opening the queue's backend: the one place that chooses one.
public enum Backends {
    /// The engines a queue can live in.
    public enum Kind: Sendable, Equatable {
        /// A database file (the default).
        case sqlite
        /// A PostgreSQL database named by a `postgresql://` or `postgres://` URI.
        case postgresql
    }

    /// Which engine `location` names: a `postgresql://` or `postgres://` URI (any case) is
    /// PostgreSQL, anything else a file path. libpq's keyword form (`host=… dbname=…`) is not
    /// accepted, since a file may be named so: its settings go in the URI's query instead
    /// (`postgresql:///keysat?service=queue`).
    public static func kind(of location: String) -> Kind {
        let lowered = location.prefix(13).lowercased()
        return lowered.hasPrefix("postgresql://") || lowered.hasPrefix("postgres://") ? .postgresql : .sqlite
    }

    /// Opens the queue at `location` (a database file or a `postgresql://` URI).
    ///
    /// - Parameters:
    ///   - create: create a missing database instead of refusing it (`init`, `endpoint add`).
    ///   - readOnly: for commands that only read, so that a user with read access can.
    ///   - repairSchema: first record the schema steps whose changes are there but whose rows
    ///     are missing (`init --repair`; `capabilities.schemaRepair`).
    public static func open(
        _ location: String, create: Bool = false, readOnly: Bool = false, busyTimeoutMS: Int = 5000,
        clock: any TimeSource = SystemClock(), repairSchema: Bool = false
    ) throws -> any WebhookBackend {
        switch kind(of: location) {
        case .sqlite:
            return try WebhookStore(
                path: location, create: create, readOnly: readOnly, busyTimeoutMS: busyTimeoutMS, clock: clock,
                repairSchema: repairSchema)
        case .postgresql:
            // libpq reads the scheme in lowercase only; `kind(of:)` in any case.
            return try PostgresStore(
                schemeLowercased(location), create: create, readOnly: readOnly, clock: clock,
                repairSchema: repairSchema)
        }
    }
}
