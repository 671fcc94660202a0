#if canImport(Glibc)
    import Glibc
#endif

/// An error of the keysat-webhooks tools: what went wrong, worded for the operator,
/// and which sysexits(3) class it belongs to.
///
/// Every library error ends up as one of these, and `exitCode` is the only place
/// where an error becomes an exit status. Messages never carry secrets or bound values.
public struct KeysatError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The sysexits(3) class of an error.
    public enum Kind: Sendable, Equatable {
        /// Bad command-line usage (EX_USAGE, 64).
        case usage
        /// Input data was malformed (EX_DATAERR, 65).
        case data
        /// An input file or the database does not exist or cannot be read (EX_NOINPUT, 66).
        case noInput
        /// A service (a receiver, the lock) is unavailable (EX_UNAVAILABLE, 69).
        case unavailable
        /// A bug or an unexpected state of the tool itself (EX_SOFTWARE, 70).
        case `internal`
        /// The system ran short of something the tool needs: file descriptors, memory, threads
        /// (EX_OSERR, 71). Not a bug, and not a missing file: raise the limit or free some.
        case system
        /// A file could not be created (EX_CANTCREAT, 73).
        case cannotCreate
        /// Reading or writing failed (EX_IOERR, 74).
        case io
        /// Try again later: the database is busy, the lock is held (EX_TEMPFAIL, 75).
        case temporary
        /// Permission denied (EX_NOPERM, 77).
        case permission
        /// The set-up is wrong and a person must change it: e.g. a PostgreSQL queue whose schema
        /// is older than this version's, which only `init` upgrades (EX_CONFIG, 78).
        case configuration
    }

    /// The underlying cause, kept for callers that match on it (the message already says it).
    public enum Cause: Sendable, Equatable {
        /// A system call's `errno`.
        case errno(Int32)
        /// An SQLite extended result code.
        case sqlite(Int32)
        /// A libcurl `CURLcode`.
        case curl(Int32)
    }

    public var kind: Kind
    public var message: String
    public var cause: Cause?

    public init(_ kind: Kind, _ message: String, cause: Cause? = nil) {
        self.kind = kind
        self.message = message
        self.cause = cause
    }

    /// An error caused by a failed system call (`errno` `nil` when there was none).
    public init(_ kind: Kind, _ message: String, errno code: Int32?) {
        self.init(kind, message, cause: code.map { .errno($0) })
    }

    /// An error caused by a failed system call, worded in one way everywhere:
    /// "`what`: <strerror(code)>", then the advice in parentheses.
    ///
    /// A call that failed for want of descriptors or memory is `Kind.system` (71), whatever
    /// `kind` the caller expected: the advice is then to raise the limit, not to check a path.
    public static func system(_ kind: Kind, _ what: String, errno code: Int32, advice: String? = nil)
        -> KeysatError
    {
        if isExhaustion(code) {
            return KeysatError(.system, "\(what): \(SystemCall.describe(code)) (\(exhaustionAdvice(code)))", errno: code)
        }
        return KeysatError(
            kind, "\(what): \(SystemCall.describe(code))" + (advice.map { " (\($0))" } ?? ""), errno: code)
    }

    /// What to do when the process ran out of descriptors (EMFILE, ENFILE) or memory.
    public static func exhaustionAdvice(_ code: Int32) -> String {
        code == EMFILE || code == ENFILE
            ? "the process ran out of file descriptors; raise the limit (ulimit -n, LimitNOFILE=)"
            : "the process ran out of memory; free some or raise the limit (ulimit -v, MemoryMax=)"
    }


    public var description: String { message }

    /// The sysexits(3) code for this error.
    public var exitCode: Int32 {
        switch kind {
        case .usage: 64
        case .data: 65
        case .noInput: 66
        case .unavailable: 69
        case .internal: 70
        case .system: 71
        case .cannotCreate: 73
        case .io: 74
        case .temporary: 75
        case .permission: 77
        case .configuration: 78
        }
    }
}

extension KeysatError {
    /// Wraps any error as a `KeysatError`, keeping one that already is.
    public static func from(_ error: any Error) -> KeysatError {
        if let error = error as? KeysatError { return error }
        return KeysatError(.internal, "unexpected error: \(error)")
    }
}

extension KeysatError {
    /// Whether `code` says the system ran short (descriptors, memory), which is `Kind.system`
    /// (71) whatever call failed. Not EAGAIN, which is also a lock held or a read that would block.
    public static func isExhaustion(_ code: Int32) -> Bool {
        code == EMFILE || code == ENFILE || code == ENOMEM
    }

    /// Calls a shim's loader (`keysat_curl_load`, `keysat_crypto_load`, `keysat_pq_load`: 0 when
    /// loaded, else its dlerror(3) text in the buffer) and turns a failure into `loading`'s error.
    public static func load(
        _ library: String, package: String, _ loader: (UnsafeMutablePointer<CChar>, Int) -> Int32
    ) throws {
        var message = [CChar](repeating: 0, count: 512)
        guard loader(&message, message.count) != 0 else { return }
        let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw loading(library, text, package: package)
    }

    /// A shared library that could not be loaded: missing (unavailable, 69, with the package to
    /// install) or not loadable for want of descriptors or memory (system, 71), which dlerror(3)
    /// says only in words.
    public static func loading(_ library: String, _ message: String, package: String) -> KeysatError {
        // dlerror(3) words: EMFILE, ENOMEM, and mmap(2) refused under a memory limit (ulimit -v).
        if message.contains("Too many open files") {
            return KeysatError(.system, "cannot load \(library): \(message) (\(exhaustionAdvice(EMFILE)))")
        }
        if message.contains("Cannot allocate memory") || message.contains("failed to map segment") {
            return KeysatError(.system, "cannot load \(library): \(message) (\(exhaustionAdvice(ENOMEM)))")
        }
        return KeysatError(.unavailable, "cannot load \(library): \(message) (install the \(package) package)")
    }
}
