internal import CSQLite
import KeysatCore

/// A compiled statement, the owner of its `sqlite3_stmt*`.
///
/// Binding is by 1-based index, as in C. See <https://www.sqlite.org/c3ref/stmt.html>.
public final class Statement {
    let handle: OpaquePointer
    unowned let database: Database

    /// The first failed bind since the last reset (a value too big, out of memory): reported by
    /// the next `step`, so that a statement never runs with a parameter silently left NULL.
    private var bindFailure: Int32 = SQLITE_OK

    /// `SQLITE_TRANSIENT` is a macro Swift does not import: SQLite copies the bound bytes.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(database: Database, sql: String) throws {
        self.database = database
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v2(database.handle, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK, let stmt else {
            throw database.failure(
                SQLiteFailure(
                    code: rc, message: database.lastErrorMessage,
                    systemError: sqlite3_system_errno(database.handle)))
        }
        handle = stmt
    }

    deinit {
        sqlite3_finalize(handle)
    }

    // MARK: - Binding

    /// Binds the values in order, starting at index 1, after a reset.
    @discardableResult
    public func bind(_ values: [SQLValue]) -> Statement {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        bindFailure = SQLITE_OK
        for (offset, value) in values.enumerated() {
            bind(value, at: Int32(offset + 1))
        }
        return self
    }

    /// Binds values by parameter name (`:name`), after a reset; names not in the SQL are ignored.
    @discardableResult
    public func bind(named values: [(String, SQLValue)]) -> Statement {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        bindFailure = SQLITE_OK
        for (name, value) in values {
            let index = sqlite3_bind_parameter_index(handle, name)
            if index > 0 { bind(value, at: index) }
        }
        return self
    }

    private func bind(_ value: SQLValue, at index: Int32) {
        let rc: Int32
        switch value {
        case .null:
            rc = sqlite3_bind_null(handle, index)
        case .integer(let number):
            rc = sqlite3_bind_int64(handle, index, number)
        case .text(let text):
            rc = sqlite3_bind_text(handle, index, text, -1, Statement.transient)
        case .real(let number):
            rc = sqlite3_bind_double(handle, index, number)
        case .blob(let bytes):
            rc = bytes.withUnsafeBytes { buffer in
                sqlite3_bind_blob(handle, index, buffer.baseAddress, Int32(buffer.count), Statement.transient)
            }
        case .bytes(let bytes):
            // A text value made from raw bytes: payloads are bound without a String round trip.
            rc = bytes.withUnsafeBytes { buffer in
                guard let base = buffer.baseAddress, buffer.count > 0 else {
                    return sqlite3_bind_text(handle, index, "", 0, Statement.transient)
                }
                return sqlite3_bind_text(
                    handle, index, base.assumingMemoryBound(to: CChar.self),
                    Int32(buffer.count), Statement.transient)
            }
        }
        if rc != SQLITE_OK && bindFailure == SQLITE_OK { bindFailure = rc }
    }

    // MARK: - Stepping

    /// Steps once: `true` when a row is ready, `false` when done.
    public func step() throws -> Bool {
        if bindFailure != SQLITE_OK {
            throw SQLiteFailure(code: bindFailure, message: String(cString: sqlite3_errstr(bindFailure)))
                .keysatError(path: database.path)
        }
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let failure = SQLiteFailure(
                code: rc, message: database.lastErrorMessage,
                systemError: sqlite3_system_errno(database.handle))
            sqlite3_reset(handle)
            throw failure.keysatError(path: database.path)
        }
    }

    /// Runs a statement that returns no rows.
    public func run(_ values: [SQLValue] = []) throws {
        bind(values)
        while try step() {}
        sqlite3_reset(handle)
    }

    /// Runs a query and maps every row.
    public func rows<T>(_ values: [SQLValue] = [], _ map: (Row) throws -> T) throws -> [T] {
        bind(values)
        return try boundRows(map)
    }

    /// Runs a query with named values and maps every row.
    public func rows<T>(named values: [(String, SQLValue)], _ map: (Row) throws -> T) throws -> [T] {
        bind(named: values)
        return try boundRows(map)
    }

    /// Runs a statement with named values that returns no rows.
    public func run(named values: [(String, SQLValue)]) throws {
        bind(named: values)
        while try step() {}
        sqlite3_reset(handle)
    }

    private func boundRows<T>(_ map: (Row) throws -> T) throws -> [T] {
        var result: [T] = []
        let row = Row(statement: self)
        while try step() {
            result.append(try map(row))
        }
        sqlite3_reset(handle)
        return result
    }

    /// Runs a query and maps its first row, if any.
    public func first<T>(_ values: [SQLValue] = [], _ map: (Row) throws -> T) throws -> T? {
        bind(values)
        defer { sqlite3_reset(handle) }
        return try step() ? map(Row(statement: self)) : nil
    }
}

/// A value bound to a statement parameter.
public enum SQLValue: Sendable {
    case null
    case integer(Int64)
    case text(String)
    /// UTF-8 text given as bytes, bound as TEXT.
    case bytes([UInt8])
    /// A real number.
    case real(Double)
    /// Bytes bound as a BLOB.
    case blob([UInt8])

    /// A text value, or NULL for `nil`.
    public static func optional(_ text: String?) -> SQLValue { text.map(SQLValue.text) ?? .null }
    /// An integer value, or NULL for `nil`.
    public static func optional(_ number: Int?) -> SQLValue {
        number.map { .integer(Int64($0)) } ?? .null
    }
}

/// The current row of a stepping statement; valid only until the next step.
public struct Row {
    let statement: Statement

    /// Column `index` (0-based) as text, or `nil` for NULL.
    public func text(_ index: Int32) -> String? {
        guard let pointer = sqlite3_column_text(statement.handle, index) else { return nil }
        return String(cString: pointer)
    }

    /// Column `index` as UTF-8 bytes, or `nil` for NULL.
    public func bytes(_ index: Int32) -> [UInt8]? {
        guard let pointer = sqlite3_column_text(statement.handle, index) else { return nil }
        let count = Int(sqlite3_column_bytes(statement.handle, index))
        return Array(UnsafeBufferPointer(start: pointer, count: count))
    }

    /// Column `index` as an integer, or `nil` for NULL.
    public func integer(_ index: Int32) -> Int? {
        if sqlite3_column_type(statement.handle, index) == SQLITE_NULL { return nil }
        return Int(sqlite3_column_int64(statement.handle, index))
    }

    /// Whether column `index` is NULL.
    public func isNull(_ index: Int32) -> Bool { sqlite3_column_type(statement.handle, index) == SQLITE_NULL }

    /// Whether column `index` holds text (not NULL, a number or a blob).
    public func isText(_ index: Int32) -> Bool { sqlite3_column_type(statement.handle, index) == SQLITE_TEXT }

    /// Whether column `index` holds an integer (not NULL, a real, text or a blob).
    public func isInteger(_ index: Int32) -> Bool {
        sqlite3_column_type(statement.handle, index) == SQLITE_INTEGER
    }

    /// Column `index` as non-NULL text (empty for NULL).
    public func string(_ index: Int32) -> String { text(index) ?? "" }

    /// Column `index` exactly as stored, with its type: text and blobs byte for byte (a NUL or
    /// bytes that are not UTF-8 kept, where `text` would cut or replace them). What a statement
    /// binds to find the very value again (another program's rows may hold anything).
    public func value(_ index: Int32) -> SQLValue {
        switch sqlite3_column_type(statement.handle, index) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(statement.handle, index))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(statement.handle, index))
        case SQLITE_TEXT: return .bytes(rawBytes(index))
        case SQLITE_BLOB: return .blob(rawBytes(index))
        default: return .null
        }
    }

    /// The bytes of a text or blob column as stored (NUL bytes and all); a number as SQLite
    /// renders it as text, as `hex()` and `CAST(… AS BLOB)` do. Read a column's type first: it
    /// is undefined after a conversion.
    public func rawBytes(_ index: Int32) -> [UInt8] {
        let pointer = sqlite3_column_blob(statement.handle, index)
        let count = Int(sqlite3_column_bytes(statement.handle, index))
        guard let pointer, count > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    /// `body` over the bytes of column `index` as stored (see `rawBytes`), without a copy; valid
    /// only within `body`.
    public func withRawBytes<T>(_ index: Int32, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        let pointer = sqlite3_column_blob(statement.handle, index)
        let count = Int(sqlite3_column_bytes(statement.handle, index))
        return body(UnsafeRawBufferPointer(start: count > 0 ? pointer : nil, count: count))
    }

    /// `typeof()` of column `index`: integer, real, text, blob or null.
    public func typeName(_ index: Int32) -> String {
        switch sqlite3_column_type(statement.handle, index) {
        case SQLITE_INTEGER: return "integer"
        case SQLITE_FLOAT: return "real"
        case SQLITE_TEXT: return "text"
        case SQLITE_BLOB: return "blob"
        default: return "null"
        }
    }
}
