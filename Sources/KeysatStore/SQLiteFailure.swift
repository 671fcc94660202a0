internal import CSQLite
import KeysatCore

#if canImport(Glibc)
    import Glibc
#endif

/// A failed SQLite call: the extended result code and SQLite's message, never the bound values.
struct SQLiteFailure: Error {
    var code: Int32
    var message: String
    /// The errno of the failed system call, when SQLite knows it.
    var systemError: Int32 = 0

    /// The primary result code (the low byte of an extended one).
    var primary: Int32 { code & 0xff }

    /// Maps SQLite's result to the tool's error classes.
    /// See <https://www.sqlite.org/rescode.html>.
    func keysatError(path: String) -> KeysatError {
        var error = classified(path: path)
        error.cause = .sqlite(code)
        return error
    }

    private func classified(path: String) -> KeysatError {
        switch primary {
        case SQLITE_BUSY, SQLITE_LOCKED:
            return KeysatError(
                .temporary,
                "database \(path) is busy (locked by another process past the busy timeout); try again"
            )
        case SQLITE_READONLY, SQLITE_PERM, SQLITE_AUTH:
            return KeysatError(.permission, "database \(path) is not writable: \(message)")
        case SQLITE_FULL:
            return KeysatError(
                .io, "database \(path): disk full: \(message) (free some space; the change was not written)")
        case SQLITE_IOERR where systemError == ENOSPC || systemError == EDQUOT || systemError == EFBIG:
            return KeysatError.system(
                .io, "database \(path): disk full", errno: systemError,
                advice: "free some space; the change was not written")
        case SQLITE_IOERR where KeysatError.isExhaustion(systemError) || code == SQLITE_IOERR | (12 << 8):  // SQLITE_IOERR_NOMEM
            return KeysatError(
                .system, "database \(path): \(message): \(SystemCall.describe(systemError == 0 ? ENOMEM : systemError)) (the process ran out of file descriptors or memory)")
        case SQLITE_IOERR:
            let cause = systemError != 0 ? ": \(SystemCall.describe(systemError))" : ""
            return KeysatError(.io, "database \(path): I/O error: \(message)\(cause)")
        case SQLITE_CANTOPEN where KeysatError.isExhaustion(systemError):
            return KeysatError.system(.system, "cannot open database \(path)", errno: systemError)
        case SQLITE_CANTOPEN:
            return KeysatError(.noInput, "cannot open database \(path): \(message)")
        case SQLITE_NOTADB, SQLITE_CORRUPT:
            return KeysatError(.data, "database \(path) is damaged or not a database: \(message)")
        case SQLITE_CONSTRAINT:
            return KeysatError(.data, "database \(path): constraint failed: \(message)")
        case SQLITE_NOMEM:
            return KeysatError(.system, "database \(path): out of memory")
        default:
            return KeysatError(.internal, "database \(path): \(message) (SQLite code \(code))")
        }
    }
}
