#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The process environment, passed in so tests can control it.
public struct Environment: Sendable {
    private let lookup: @Sendable (String) -> String?

    public init(_ values: [String: String]) { lookup = { values[$0] } }
    private init(lookup: @escaping @Sendable (String) -> String?) { self.lookup = lookup }

    /// The real environment of this process.
    public static let process = Environment { name in getenv(name).map { String(cString: $0) } }

    public subscript(name: String) -> String? { lookup(name) }

    /// The default database when neither `--db` nor `$KEYSAT_DB` says otherwise.
    public static let defaultDatabasePath = "/var/lib/keysat/keysat.db"

    /// The database path: the `--db` option, else `$KEYSAT_DB`, else the default.
    public func databasePath(option: String?) -> String {
        if let option, !option.isEmpty { return option }
        if let value = self["KEYSAT_DB"], !value.isEmpty { return value }
        return Environment.defaultDatabasePath
    }
}
