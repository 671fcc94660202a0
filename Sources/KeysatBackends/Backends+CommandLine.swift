public import KeysatCore
import KeysatPostgres
public import KeysatStore

/// What the three programs check of a database location before opening it: a password on the
/// command line, and options that only one backend can honour. Decided from the location alone
/// (`Backends.kind(of:)`), so that a refused command opens nothing and changes nothing.
extension Backends {
    /// Options that name something only a backend with files has.
    public enum FileOption: String, Sendable {
        case lockFile = "--lock-file"
        case kickFile = "--kick-file"
        case group = "--group"
        case repair = "--repair"
    }

    /// What the backend of `kind` can do, without opening one.
    public static func capabilities(of kind: Kind) -> BackendCapabilities {
        switch kind {
        case .sqlite: WebhookStore.capabilities
        case .postgresql: PostgresStore.capabilities
        }
    }

    /// Refuses (64) a `--db` value that holds a password: a command line is readable by every
    /// user of the host (`ps`, /proc) and stays in shell history. `KEYSAT_DB` may hold one: it
    /// is not on a command line (and /etc/default/keysat-webhooks is root's).
    ///
    /// - Parameter option: the value of `--db` as given, or `nil`.
    public static func checkCommandLine(database option: String?) throws {
        guard let option, hasPassword(option) else { return }
        throw KeysatError(
            .usage,
            "'--db' holds a password, which other users can read on a command line: put it in a passfile (PGPASSFILE), a service file (PGSERVICEFILE), or set KEYSAT_DB in /etc/default/keysat-webhooks"
        )
    }

    /// Refuses (64) `option`, given on the command line, when the backend at `location` cannot
    /// honour it, saying why.
    public static func refuse(_ option: FileOption, at location: String) throws {
        let capabilities = capabilities(of: kind(of: location))
        let why: String
        switch option {
        case .lockFile where !capabilities.lockFile:
            why =
                "runs on PostgreSQL take no lock (leases keep runs on this host or another from sending one delivery twice)"
        case .kickFile where !capabilities.kickFile:
            why = "keysat-enqueue wakes lingering runs with NOTIFY \(PostgresStore.wakeUpChannel) instead"
        case .group where !capabilities.sharedFiles:
            why = "the server keeps its files; give other users access with PostgreSQL roles (GRANT)"
        case .repair where !capabilities.schemaRepair:
            why = "its schema steps are applied whole, in one transaction, so there is nothing to repair"
        default:
            return
        }
        throw KeysatError(.usage, "'\(option.rawValue)' does not apply to a PostgreSQL database: \(why)")
    }

    /// Whether `location` is a PostgreSQL URI with a password in it (`user:password@` or
    /// `?password=`).
    public static func hasPassword(_ location: String) -> Bool {
        kind(of: location) == .postgresql && PostgresConnectionString.hasPassword(schemeLowercased(location))
    }

    /// `location` as messages may show it: a path as it is, a PostgreSQL URI without its password.
    public static func displayName(_ location: String) -> String {
        kind(of: location) == .postgresql
            ? PostgresConnectionString.withoutPassword(schemeLowercased(location)) : location
    }

    /// The URI with its scheme in lowercase, as `kind(of:)` reads it in any case.
    static func schemeLowercased(_ location: String) -> String {
        guard let colon = location.firstIndex(of: ":") else { return location }
        return location[..<colon].lowercased() + location[colon...]
    }
}
