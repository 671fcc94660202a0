internal import CPostgresShim
public import KeysatCore

#if canImport(Glibc)
    import Glibc
#endif

/// One PostgreSQL session, the owner of its `PGconn`, closed (`PQfinish`) in `deinit`.
///
/// Opened from a libpq connection string (a `postgresql://` URI or keyword/value pairs; the
/// `PG*` variables, `.pgpass` and service files are honoured by libpq itself), then held to
/// the limits of `PostgresSessionSettings`. Statements are sent with their parameters apart
/// (`PQexecParams`, text format), never spliced into the SQL. Not `Sendable`: a session
/// belongs to the thread that opened it.
/// See <https://www.postgresql.org/docs/15/libpq-exec.html>.
public final class PostgresConnection {
    let handle: OpaquePointer

    /// Connects and applies `settings`.
    ///
    /// - Parameters:
    ///   - connectionString: a URI or keyword/value pairs; empty for libpq's defaults and `PG*`.
    ///   - settings: the session's timeouts.
    ///   - environment: consulted only for `PGCONNECT_TIMEOUT`, which, when set, wins over
    ///     `settings.connectTimeoutSeconds` (libpq reads the rest of `PG*` itself).
    /// - Throws: `KeysatError`: 64 for a string libpq cannot parse, 69 when the server cannot
    ///   be reached, 77 when authentication fails, 66 for a missing database, 69/71 when libpq
    ///   cannot be loaded. The message never holds the password.
    public init(
        _ connectionString: String, settings: PostgresSessionSettings = PostgresSessionSettings(),
        environment: Environment = .process
    ) throws {
        // Parsed first, so that a malformed string is a usage error whose message cannot quote
        // the password (libpq's parse errors quote the part that failed).
        _ = try PostgresConnectionString.options(connectionString)
        handle = try PostgresConnection.connect(connectionString, settings, environment)
        keysat_pq_silence_notices(handle)
        try apply(settings)
    }

    deinit {
        keysat_pq_finish(handle)
    }

    /// The server's version, e.g. 150018 for 15.18.
    public var serverVersion: Int {
        Int(keysat_pq_server_version(handle))
    }

    /// Whether the session is inside a transaction (open or failed); not when the connection
    /// is lost (its state is then unknown, and there is no transaction left to end).
    public var isInTransaction: Bool {
        let status = keysat_pq_transaction_status(handle)
        return status != PQTRANS_IDLE && status != PQTRANS_UNKNOWN
    }

    /// Whether the connection to the server still stands.
    public var isConnected: Bool {
        keysat_pq_status(handle) != CONNECTION_BAD
    }

    /// Whether the session is inside a transaction that a failed statement aborted: every
    /// statement but ROLLBACK is refused until it ends.
    public var isInFailedTransaction: Bool {
        keysat_pq_transaction_status(handle) == PQTRANS_INERROR
    }

    // MARK: - Connecting

    private static func connect(
        _ connectionString: String, _ settings: PostgresSessionSettings, _ environment: Environment
    ) throws -> OpaquePointer {
        // PQconnectdbParams reads the array in order, the last non-empty value winning, with
        // the connection string expanded where `dbname` stands: pairs before it are defaults
        // the string may override, pairs after it are what this tool relies on.
        var pairs: [(String, String)] = []
        if environment["PGCONNECT_TIMEOUT"] == nil {
            pairs.append(("connect_timeout", String(max(settings.connectTimeoutSeconds, 1))))
        }
        pairs.append(("fallback_application_name", "keysat-webhooks"))
        pairs.append(("dbname", connectionString))
        // Results are decoded as UTF-8, whatever PGCLIENTENCODING says.
        pairs.append(("client_encoding", "UTF8"))
        let connection = try withCStrings(pairs.map(\.0) + [nil]) { keywords in
            try withCStrings(pairs.map(\.1) + [nil]) { values in
                keysat_pq_connectdb_params(keywords, values, 1)
            }
        }
        guard let connection else {
            throw KeysatError(.system, "PostgreSQL: cannot connect: out of memory")
        }
        guard keysat_pq_status(connection) == CONNECTION_OK else {
            let message = String(cString: keysat_pq_error_message(connection))
            keysat_pq_finish(connection)
            throw PostgresFailure.connection(message).keysatError
        }
        return connection
    }

    /// Sets the session's limits in one round trip.
    private func apply(_ settings: PostgresSessionSettings) throws {
        let names = settings.serverSettings
        let calls = names.indices.map { "set_config('\(names[$0].name)', $\($0 + 1), false)" }
        try execute("SELECT " + calls.joined(separator: ", "), names.map(\.value))
    }

    // MARK: - Statements

    /// Runs one statement with `parameters` bound to `$1`, `$2`, … in text format.
    ///
    /// - Returns: the rows (values in PostgreSQL's text format, `nil` for NULL) and the count
    ///   of rows changed.
    /// - Throws: `KeysatError` classified by SQLSTATE (`PostgresFailure.kind`); its message has
    ///   the SQLSTATE and never a parameter's value.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [String?] = []) throws -> PostgresResult {
        if let index = parameters.firstIndex(where: { $0?.utf8.contains(0) == true }) {
            throw KeysatError(
                .data, "PostgreSQL: parameter \(index + 1) contains a NUL character, which text cannot hold")
        }
        let result = try withCStrings(parameters) { values in
            keysat_pq_exec_params_text(handle, sql, Int32(values.count), values)
        }
        return try read(result)
    }

    /// Runs `sql`, which may hold several statements separated by semicolons and no
    /// parameters, in one round trip (`PQexec`): for schema scripts. Unless it says BEGIN and
    /// COMMIT itself, the statements run in one implicit transaction.
    public func executeScript(_ sql: String) throws {
        try read(keysat_pq_exec(handle, sql))
    }

    @discardableResult
    private func read(_ result: OpaquePointer?) throws -> PostgresResult {
        guard let result else {
            // No result at all: libpq could not send the statement or ran out of memory.
            throw failure(sqlState: nil, primary: nil)
        }
        defer { keysat_pq_clear(result) }
        let status = keysat_pq_result_status(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            guard status == PGRES_FATAL_ERROR || status == PGRES_NONFATAL_ERROR else {
                throw KeysatError(.internal, "PostgreSQL: unexpected result status \(status.rawValue)")
            }
            throw failure(
                sqlState: field(result, PostgresConnection.sqlStateField),
                primary: field(result, PostgresConnection.primaryMessageField))
        }
        return PostgresConnection.rows(of: result)
    }

    /// The failure of the last call: the server's SQLSTATE when it sent one, else libpq's
    /// words, as a lost connection (08006) when the session is now broken.
    private func failure(sqlState: String?, primary: String?) -> KeysatError {
        if let sqlState {
            return PostgresFailure.server(sqlState: sqlState, primary: primary ?? "").keysatError
        }
        let libpq = PostgresFailure.oneLine(String(cString: keysat_pq_error_message(handle)))
        let lost = keysat_pq_status(handle) == CONNECTION_BAD
        // No message, or libpq's own "out of memory": this process ran short (71), not a bug.
        let noMemory = libpq.isEmpty || libpq.contains("out of memory")
        return PostgresFailure(
            sqlState: lost ? "08006" : noMemory ? "53200" : "XX000", fromServer: false,
            message: (lost ? "connection lost: " : "") + (libpq.isEmpty ? "out of memory" : libpq)
        ).keysatError
    }

    // libpq's PG_DIAG_* codes are character macros, which Swift does not import.
    private static let sqlStateField = Int32(UInt8(ascii: "C"))
    private static let primaryMessageField = Int32(UInt8(ascii: "M"))

    private func field(_ result: OpaquePointer, _ code: Int32) -> String? {
        keysat_pq_result_error_field(result, code).map { String(cString: $0) }
    }

    private static func rows(of result: OpaquePointer) -> PostgresResult {
        let rowCount = keysat_pq_ntuples(result)
        let columnCount = keysat_pq_nfields(result)
        let columns = (0..<columnCount).map { String(cString: keysat_pq_fname(result, $0)) }
        let rows = (0..<rowCount).map { row in
            (0..<columnCount).map { column -> String? in
                if keysat_pq_getisnull(result, row, column) != 0 { return nil }
                let bytes = UnsafeRawBufferPointer(
                    start: keysat_pq_getvalue(result, row, column),
                    count: Int(keysat_pq_getlength(result, row, column)))
                return String(decoding: bytes, as: UTF8.self)
            }
        }
        let affected = Int(String(cString: keysat_pq_cmd_tuples(result))) ?? 0
        return PostgresResult(columns: columns, rows: rows, affectedRows: affected)
    }
}

/// C copies of `strings` (NULL for `nil`) for the length of `body`, then freed.
private func withCStrings<Result>(
    _ strings: [String?], _ body: ([UnsafePointer<CChar>?]) throws -> Result
) throws -> Result {
    var copies: [UnsafeMutablePointer<CChar>?] = []
    copies.reserveCapacity(strings.count)
    defer { for copy in copies { free(copy) } }
    for string in strings {
        guard let string else {
            copies.append(nil)
            continue
        }
        // A failed copy must not turn a value into NULL.
        guard let copy = strdup(string) else {
            throw KeysatError.system(.system, "PostgreSQL: cannot copy a parameter", errno: ENOMEM)
        }
        copies.append(copy)
    }
    return try body(copies.map { $0.map { UnsafePointer($0) } })
}
