internal import CSQLite
import KeysatCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One SQLite connection, the owner of its `sqlite3*` handle.
///
/// Opened with WAL journaling, a busy timeout and foreign keys on, as every connection of
/// this project must be. Not `Sendable`: a connection belongs to the thread that opened it.
/// See <https://www.sqlite.org/c3ref/open.html>.
public final class Database {
    /// How to treat a database file that does not exist yet.
    public enum OpenMode: Sendable {
        /// The file must exist (a missing one is `noInput`, 66).
        case existing
        /// Create the file, mode 0600, if it is missing.
        case create
        /// The file must exist; opened for reading only (a monitoring user's `stats`), with no
        /// pragma or migration that writes.
        case readOnly
    }

    let handle: OpaquePointer
    public let path: String

    /// Opens (and with `.create`, creates) the database at `path`.
    ///
    /// - Parameters:
    ///   - path: the database file.
    ///   - mode: whether a missing file is created.
    ///   - busyTimeoutMS: how long a statement waits for a lock held by another process.
    /// - Throws: `KeysatError` naming the file and the cause.
    public init(path: String, mode: OpenMode, busyTimeoutMS: Int = 5000) throws {
        self.path = path
        if mode != .create {
            try Database.checkExisting(path)
        } else {
            try Database.createFileIfMissing(path)
        }
        try Database.checkFiles(path, allowEmpty: mode == .create)
        Database.configureOnce
        var db: OpaquePointer?
        let flags = (mode == .readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            let code = db.map { sqlite3_system_errno($0) } ?? ENOMEM
            sqlite3_close_v2(db)
            // Out of descriptors or memory is not "no database" (66): say what ran short (71).
            if KeysatError.isExhaustion(code) || rc == SQLITE_NOMEM {
                throw SQLiteFailure(code: rc, message: message, systemError: code).keysatError(path: path)
            }
            let kind: KeysatError.Kind =
                (rc == SQLITE_PERM || rc == SQLITE_READONLY) ? .permission : .noInput
            throw KeysatError(kind, "cannot open database \(path): \(message)")
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, Int32(clamping: busyTimeoutMS))
        do {
            // journal_mode=WAL needs a write lock only the first time; afterwards it is a read.
            // A read-only connection takes the mode the file has.
            if mode != .readOnly { try executeWaitingForLock("PRAGMA journal_mode=WAL", busyTimeoutMS) }
            if mode != .readOnly {
                // The WAL and shared-memory files stay when the last connection closes (the WAL
                // emptied: journal_size_limit=0 truncates it after each checkpoint, old page
                // images and all), so that a user who may only read the database can open it:
                // SQLite can read a WAL database without write access only when both exist.
                var persist: Int32 = 1
                let rc = sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist)
                guard rc == SQLITE_OK else {
                    throw SQLiteFailure(code: rc, message: String(cString: sqlite3_errstr(rc)))
                        .keysatError(path: path)
                }
                try execute("PRAGMA journal_size_limit=0")
            }
            try execute("PRAGMA foreign_keys=ON")
            try execute("PRAGMA synchronous=NORMAL")
            // Deleted and overwritten content (old secrets above all) is zeroed, not left in free space.
            try execute("PRAGMA secure_delete=ON")
        } catch {
            sqlite3_close_v2(db)
            throw error
        }
    }

    /// An empty database in memory, where `SchemaCheck` applies the steps to see what each makes.
    init(inMemory: Void) throws {
        path = ":memory:"
        Database.configureOnce
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let db else {
            sqlite3_close_v2(db)
            throw KeysatError(.internal, "cannot open a database in memory (SQLite code \(rc))")
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
    }

    deinit {
        sqlite3_close_v2(handle)
    }

    /// A database that must exist: its absence and a lack of permission said in words.
    private static func checkExisting(_ path: String) throws {
        var info = stat()
        if stat(path, &info) != 0 {
            let code = errno
            if code == ENOENT {
                throw KeysatError(
                    .noInput, "database \(path) does not exist (create it with 'keysat-webhooks init')",
                    errno: code)
            }
            if code == EACCES {
                throw KeysatError.system(
                    .permission, "cannot open database \(path)", errno: code,
                    advice: "run as its owner or a member of its group")
            }
            throw KeysatError.system(.noInput, "cannot open database \(path)", errno: code)
        }
        if access(path, R_OK) != 0 {
            let code = errno
            throw KeysatError.system(
                .permission, "cannot read database \(path)", errno: code,
                advice: "run as its owner or a member of its group")
        }
    }

    /// What SQLite would open, checked before it does: the database must be a regular file (a
    /// FIFO would block the open for ever, with signals blocked) and not empty unless it is being
    /// made (an empty file is not a database); its journal, WAL and shared-memory files, which
    /// sit in the same folder as the file the path resolves to, must not be links or special
    /// files planted by another user (SQLite would open and write through them).
    private static func checkFiles(_ path: String, allowEmpty: Bool) throws {
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw KeysatError(.data, "database \(path) is not a regular file", errno: nil)
        }
        if info.st_size == 0 && !allowEmpty {
            throw KeysatError(
                .data,
                "database \(path) is empty, not a database (make it one with 'keysat-webhooks init')",
                errno: nil)
        }
        var bases = [path]
        if let resolved = realpath(path, nil) {
            let target = String(cString: resolved)
            free(resolved)
            if target != path { bases.append(target) }
        }
        for base in bases {
            for suffix in ["-wal", "-shm", "-journal"] {
                let file = base + suffix
                var companion = stat()
                guard lstat(file, &companion) == 0 else { continue }
                switch companion.st_mode & S_IFMT {
                case S_IFREG:
                    // Left by a user who may write the database while this one may not write
                    // them (the database chowned after they were made): say so, not "cannot open".
                    if suffix != "-journal", access(path, W_OK) == 0, access(file, R_OK | W_OK) != 0 {
                        throw KeysatError(
                            .permission,
                            "\(file) (uid \(companion.st_uid), mode \(String(companion.st_mode & 0o7777, radix: 8))) cannot be read and written by this user (uid \(getuid())): give it the database's owner and mode (chown --reference=\(path) \(file); chmod --reference=\(path) \(file))",
                            errno: EACCES)
                    }
                    continue
                case S_IFLNK:
                    throw KeysatError(
                        .permission,
                        "\(file) is a symbolic link; refusing to open the database through it: remove it",
                        errno: nil)
                default:
                    throw KeysatError(.data, "\(file) is not a regular file; remove it", errno: nil)
                }
            }
        }
    }

    /// Creates an empty file with mode 0600 unless it exists, so that SQLite never creates
    /// the database with the process umask (it may hold secrets).
    private static func createFileIfMissing(_ path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd >= 0 {
            close(fd)
            return
        }
        let code = errno
        if code == EEXIST { return }
        throw KeysatError.system(
            code == EACCES ? .permission : .cannotCreate, "cannot create database \(path)", errno: code)
    }

    // MARK: - Statements

    /// Runs one or more statements that return no rows.
    public func execute(_ sql: String) throws {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        if rc != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? lastErrorMessage
            sqlite3_free(errorMessage)
            throw failure(
                SQLiteFailure(code: rc, message: message, systemError: sqlite3_system_errno(handle)))
        }
    }

    /// The error for a failed call: a statement that names a table or column of this project
    /// that is not there means a damaged schema (65, saying what is missing and what to do),
    /// not a bug; only then is the schema read (`SchemaCheck`), never on a call that worked.
    func failure(_ failure: SQLiteFailure) -> KeysatError {
        let error = failure.keysatError(path: path)
        guard failure.primary == SQLITE_ERROR, !diagnosing,
            failure.message.hasPrefix("no such table") || failure.message.hasPrefix("no such column")
        else { return error }
        diagnosing = true
        defer { diagnosing = false }
        guard let problem = try? SchemaCheck.problem(in: self) else { return error }
        return KeysatError(.data, problem, cause: error.cause)
    }

    /// Set while `failure` reads the schema, so that a failure of that reading is not diagnosed.
    private var diagnosing = false

    /// Runs `sql`, trying again for up to `timeoutMS` while SQLite answers SQLITE_BUSY at once.
    ///
    /// SQLite does not call the busy handler when a connection holding a read lock needs the
    /// write lock (waiting could deadlock two such connections): it returns SQLITE_BUSY at once.
    /// Turning a rollback-journal file (a new one, or one Keysat made) to WAL is such a case, so
    /// connections opening the same new file together would fail where they should wait.
    /// Between tries the statement holds no lock, so whichever connection goes first finishes.
    private func executeWaitingForLock(_ sql: String, _ timeoutMS: Int) throws {
        let deadline = SystemCall.monotonicMilliseconds() + Int64(timeoutMS)
        var pauseMicroseconds: UInt32 = 500
        while true {
            let rc = sqlite3_exec(handle, sql, nil, nil, nil)
            if rc == SQLITE_OK { return }
            guard rc & 0xff == SQLITE_BUSY, SystemCall.monotonicMilliseconds() < deadline else {
                throw SQLiteFailure(
                    code: rc, message: lastErrorMessage, systemError: sqlite3_system_errno(handle)
                )
                .keysatError(path: path)
            }
            usleep(pauseMicroseconds)
            pauseMicroseconds = min(pauseMicroseconds * 2, 20_000)
        }
    }

    /// Process-wide settings SQLite takes only before its first use (a Swift static is
    /// initialised once, thread-safely, on first access).
    private static let configureOnce: Void = { _ = keysat_sqlite3_disable_memory_statistics() }()

    /// Compiles one statement.
    public func prepare(_ sql: String) throws -> Statement {
        prepared?.append(sql)
        return try Statement(database: self, sql: sql)
    }

    /// When not `nil`, the text of every statement prepared: tests read the query plans of what
    /// a command really runs (`StatsQueryPlanTests`).
    public var prepared: [String]?

    /// Statements compiled once per connection by `cached`.
    private var cache: [String: Statement] = [:]

    /// The statement for `sql`, compiled on first use and kept: for a statement a run makes
    /// again and again with other values (a key's head, once per keyed delivery, where
    /// compiling was 79 % of the extra instructions a keyed delivery cost: callgrind). Each use
    /// resets it (`first`, `rows`, `run`), so a kept statement holds no lock between uses.
    public func cached(_ sql: String) throws -> Statement {
        if let statement = cache[sql] { return statement }
        let statement = try prepare(sql)
        cache[sql] = statement
        return statement
    }

    /// Runs `body` in a transaction: `BEGIN IMMEDIATE` takes the write lock at once (waiting up
    /// to the busy timeout), so two writers never deadlock upgrading a read lock.
    /// The transaction is rolled back if `body` throws.
    public func writeTransaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            if sqlite3_get_autocommit(handle) == 0 {
                sqlite3_exec(handle, "ROLLBACK", nil, nil, nil)
            }
            throw error
        }
    }

    /// Whether SQLite could open the file for reading only (it falls back silently).
    public var isReadOnly: Bool { sqlite3_db_readonly(handle, "main") == 1 }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    var lastErrorMessage: String { String(cString: sqlite3_errmsg(handle)) }
    var lastErrorCode: Int32 { sqlite3_extended_errcode(handle) }
}
