public import KeysatCore
public import KeysatStore

#if canImport(Glibc)
    import Glibc
#endif

/// The queue in a PostgreSQL database shared by several hosts: the second implementation of
/// `WebhookBackend` (docs/POSTGRES.md), with its own SQL.
///
/// What differs from SQLite's `WebhookStore` is how several runs at once stay correct without
/// a lock: a run claims each delivery just before sending it (`claim`), with a random token and
/// a lease that outlasts the attempt, and writes the outcome only where the token still stands
/// (`record`). The database's clock is the only clock for due times and leases. Not
/// `Sendable`: it owns one session.
public final class PostgresStore {
    public private(set) var connection: PostgresConnection
    /// How it was opened, to open it again after a lost connection (`record`).
    private let uri: String
    private let environment: Environment
    let clock: any TimeSource
    /// The URI as given, without a password (messages name the queue by it).
    public let location: String
    public let isReadOnly: Bool
    public private(set) var newerSchema: Int?
    /// Who claims, as `claimed_by` shows it to an operator: the host, the process, and a random
    /// part (a process ID comes back); one for all the process's sessions, since a run claims on
    /// one and records on another (`BackgroundRecorder`), and its in-flight count is one.
    /// (Tests set one per store, to stand for runs of different processes.)
    public var runID = PostgresStore.processRunID
    /// Made once, on first use (a static's initialiser runs once, whichever thread asks).
    static let processRunID: String = {
        var generator = SystemRandomNumberGenerator()
        return "\(hostName()):\(getpid()):\(String(generator.next() & 0xffff_ffff, radix: 16))"
    }()
    /// Whether this session claimed: its run's in-flight counts are deleted when it closes.
    var hasClaimed = false
    /// The database's `now()` at the first due page of the run's current round: the bound of
    /// its later pages (`dueDeliveries`).
    var roundStart: String?
    /// The schema steps `init` applied in this opening.
    public private(set) var appliedSchemaSteps: [Int] = []
    /// The claim tokens of the test deliveries this store wrote (`writeTestDelivery`), by
    /// delivery id: `dueDelivery(id:)` hands a row's token only to the session that claimed it.
    var testClaims: [String: String] = [:]

    /// Opens the queue named by `uri` (`postgresql://…`).
    ///
    /// - Parameters:
    ///   - create: create this project's tables when they are missing or older (`init`,
    ///     `endpoint add`), under a transaction-scoped advisory lock so that several hosts
    ///     starting at once apply each step once. Other commands refuse a schema older than
    ///     theirs (78) rather than change a database that other hosts use.
    ///   - readOnly: the session is read-only (`default_transaction_read_only`).
    ///   - repairSchema: not available on PostgreSQL (usage error): its schema steps are
    ///     applied in one transaction, never half.
    public init(
        _ uri: String, create: Bool = false, readOnly: Bool = false, clock: any TimeSource = SystemClock(),
        repairSchema: Bool = false, environment: Environment = .process
    ) throws {
        location = PostgresConnectionString.withoutPassword(uri)
        if repairSchema {
            throw KeysatError(.usage, "--repair is for SQLite databases: PostgreSQL applies each schema step whole")
        }
        self.uri = uri
        self.environment = environment
        connection = try PostgresConnection(uri, environment: environment)
        self.clock = clock
        isReadOnly = readOnly
        if readOnly { try connection.execute("SET default_transaction_read_only = on") }
        if create && !readOnly {
            appliedSchemaSteps = try PostgresSchema.migrate(connection, location: location)
            return
        }
        let version = try PostgresSchema.currentVersion(connection)
        if version > PostgresSchema.latest {
            guard readOnly else { throw PostgresSchema.newer(version, location: location) }
            newerSchema = version
        } else if version < PostgresSchema.latest {
            throw PostgresSchema.older(version, location: location)
        }
    }

    /// Opens the session again, as it was opened, after the server closed it (a restart, a
    /// failover): the claims made before stand (their tokens are in the rows).
    func reconnect() throws {
        connection = try PostgresConnection(uri, environment: environment)
        if isReadOnly { try connection.execute("SET default_transaction_read_only = on") }
    }

    /// This host's name (gethostname(2)), or "?" when it has none.
    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "?" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A run that claimed leaves no count of attempts in flight behind (its attempts are all
    /// over once it closes the store); a killed run's expire with its leases.
    deinit {
        if hasClaimed && connection.isConnected && !connection.isInTransaction {
            _ = try? connection.execute("DELETE FROM keysat_webhooks_in_flight WHERE run = $1", [runID])
        }
    }

    /// Runs `body` in one transaction, under `settings` (`SET LOCAL`) if any.
    func transaction<Value>(settings: [StaticString] = [], _ body: () throws -> Value) throws -> Value {
        try connection.transaction(settings: settings, body)
    }

    /// One statement's rows.
    func rows(_ sql: String, _ parameters: [String?] = []) throws -> [[String?]] {
        try connection.execute(sql, parameters).rows
    }

    /// The first column of the first row, or `nil`.
    func value(_ sql: String, _ parameters: [String?] = []) throws -> String? {
        try connection.execute(sql, parameters).rows.first?.first ?? nil
    }

    /// Rows changed by one statement.
    @discardableResult
    func run(_ sql: String, _ parameters: [String?] = []) throws -> Int {
        try connection.execute(sql, parameters).affectedRows
    }
}

extension PostgresStore: BackendSetUp {
    public var capabilities: BackendCapabilities { Self.capabilities }
    public var adoptedKeysatTables: Bool { false }
    public var repairedSchemaSteps: [Int] { [] }

    public func schemaVersion() throws -> Int {
        try PostgresSchema.currentVersion(connection)
    }

    public func schemaProblem() throws -> String? {
        let version = try schemaVersion()
        guard version >= PostgresSchema.latest else { return PostgresSchema.older(version, location: location).message }
        let missing = try rows(
            """
            SELECT t FROM unnest($1::text[]) AS t WHERE to_regclass(t) IS NULL ORDER BY t
            """, [PostgresArray.literal(PostgresSchema.tables)])
        guard !missing.isEmpty else { return nil }
        return "database \(location) says schema version \(version) but has no table "
            + missing.compactMap { $0[0] }.joined(separator: ", ")
            + ": restore it from a backup, or drop this project's tables and run 'keysat-webhooks init'"
    }

    public func permissionWarning() -> String? { nil }

    public func requireDurableCommits() throws {
        // The server's own setting decides; a session can only ask for it to be kept.
        try connection.execute("SET synchronous_commit = on")
    }

    public func checkpointErasing() throws -> Bool {
        // Overwritten rows stay in the table's pages until vacuum reclaims them; the server's
        // files are its operator's to protect (docs/POSTGRES.md). Nothing a client can force.
        true
    }
}

/// PostgreSQL array literals for `$n::type[]` parameters (text format).
enum PostgresArray {
    /// `{"a","b",NULL}`: every element quoted, `"` and `\` escaped, `nil` as NULL. A NUL
    /// character, which PostgreSQL's text cannot hold (a receiver's response may have one),
    /// becomes U+FFFD, as bytes that are not UTF-8 do.
    static func literal(_ elements: [String?]) -> String {
        // Built as bytes: per scalar, through String, this was a twentieth of a run's CPU.
        var bytes: [UInt8] = [UInt8(ascii: "{")]
        bytes.reserveCapacity(elements.reduce(2) { $0 + ($1?.utf8.count ?? 4) + 3 })
        for (index, element) in elements.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            guard let element else {
                bytes.append(contentsOf: "NULL".utf8)
                continue
            }
            bytes.append(UInt8(ascii: "\""))
            for byte in element.utf8 {
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                    bytes.append(UInt8(ascii: "\\"))
                    bytes.append(byte)
                case 0: bytes.append(contentsOf: [0xEF, 0xBF, 0xBD])  // U+FFFD
                default: bytes.append(byte)
                }
            }
            bytes.append(UInt8(ascii: "\""))
        }
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The elements of a one-dimensional array of plain words as PostgreSQL prints it
    /// (`{claimed,busy}`): for answers this project's own SQL makes, never for arbitrary text.
    static func elements(_ literal: String) -> [String] {
        literal.trimmingPrefix("{").split(separator: ",").map { String($0.filter { $0 != "}" }) }
    }
}

extension PostgresStore: WebhookBackend {}
