#if canImport(Glibc)
    import Glibc
#endif

/// The files this project writes beside the database or at a path it was given (the lock file,
/// the kick file, the metrics file), opened so that a hostile user sharing the folder cannot
/// redirect or stall the write.
///
/// - A final symbolic link is never followed (`O_NOFOLLOW`): a link planted at the path is an
///   error, not a way to truncate the link's target.
/// - An open never blocks (`O_NONBLOCK`): a FIFO or a device at the path is refused at once,
///   so a run cannot hang in `open(2)` with the lock held and signals blocked.
/// - What is opened must be a regular file owned by the running user or by root, or, where the
///   database follows the group model (docs/DESIGN.md), by a member of the database's group
///   (`trustedGroup`): the licensing service's user creates the kick file that keysat-deliver
///   empties.
/// - A new file gets exactly `mode`, whatever the umask (a unit's `UMask=0077` must not make the
///   metrics file unreadable to node_exporter, nor the kick file unwritable to the group).
public enum OwnedFile {
    /// How files beside a database are shared: with the database's group when the database is
    /// group-writable (the group model: the licensing service's user enqueues, keysat delivers),
    /// with nobody otherwise.
    public struct Sharing: Sendable {
        /// The mode of a new file beside the database: 0660 in the group model, else 0600.
        public let mode: UInt32
        /// The group whose files are trusted too, in the group model.
        public let trustedGroup: UInt32?

        public init(database: String) {
            var info = stat()
            if stat(database, &info) == 0, info.st_mode & 0o060 == 0o060 {
                mode = 0o660
                trustedGroup = info.st_gid
            } else {
                mode = 0o600
                trustedGroup = nil
            }
        }
    }

    /// Opens `path` for writing (creating it with `mode` when missing) and returns the descriptor.
    ///
    /// - Parameters:
    ///   - what: the file's role, for messages ("lock file").
    ///   - append: open with `O_APPEND`.
    ///   - trustedGroup: a group whose files are accepted too (the database's, in the group model).
    /// - Throws: `KeysatError`: `permission` for a link, a file of another user or EACCES;
    ///   `cannotCreate` for anything else that is not a regular file or cannot be created.
    public static func open(
        _ path: String, what: String, mode: UInt32, append: Bool = false, trustedGroup: UInt32? = nil
    ) throws -> Int32 {
        let base = O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (append ? O_APPEND : 0)
        var created = true
        var fd = SystemCall.retrying { Glibc.open(path, base | O_CREAT | O_EXCL, mode) }
        if fd < 0 && errno == EEXIST {
            created = false
            fd = SystemCall.retrying { Glibc.open(path, base) }
        }
        guard fd >= 0 else { throw failure(errno, path: path, what: what) }
        do {
            try check(fd, path: path, what: what, trustedGroup: trustedGroup)
            if created { _ = fchmod(fd, mode) }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    /// Checks that an open descriptor is a regular file of the running user, root or `trustedGroup`.
    public static func check(_ fd: Int32, path: String, what: String, trustedGroup: UInt32? = nil) throws {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure(errno, path: path, what: what) }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw KeysatError(
                .cannotCreate,
                "\(what) \(path) is not a regular file (\(kindName(info.st_mode))); remove it or choose another path",
                errno: nil)
        }
        let me = geteuid()
        guard info.st_uid == me || info.st_uid == 0 || (trustedGroup.map { info.st_gid == $0 } ?? false)
        else {
            throw KeysatError(
                .permission,
                "\(what) \(path) belongs to another user (uid \(info.st_uid)); refusing to write it: remove it or choose another path",
                errno: nil)
        }
    }

    /// Replaces `path` with `bytes` atomically: a temporary file with an unpredictable name in
    /// the same folder (`O_CREAT|O_EXCL|O_NOFOLLOW`), written, synced, given `mode`, then renamed
    /// over `path`. A link, a special file or another user's file at `path` is refused, not
    /// replaced or followed.
    public static func replace(_ path: String, with bytes: [UInt8], mode: UInt32, what: String) throws {
        var existing = stat()
        if lstat(path, &existing) == 0 {
            if existing.st_mode & S_IFMT == S_IFLNK {
                throw KeysatError(
                    .permission, "\(what) \(path) is a symbolic link; refusing to follow it: remove it",
                    errno: nil)
            }
            if existing.st_mode & S_IFMT != S_IFREG {
                throw KeysatError(
                    .cannotCreate,
                    "\(what) \(path) is not a regular file (\(kindName(existing.st_mode))); remove it or choose another path",
                    errno: nil)
            }
            if existing.st_uid != geteuid() && existing.st_uid != 0 {
                throw KeysatError(
                    .permission,
                    "\(what) \(path) belongs to another user (uid \(existing.st_uid)); refusing to replace it: remove it or choose another path",
                    errno: nil)
            }
        }
        var temporary = ""
        var fd: Int32 = -1
        for _ in 0..<16 {
            temporary = path + ".tmp." + randomSuffix()
            fd = SystemCall.retrying {
                Glibc.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode)
            }
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw failure(errno, path: temporary, what: what) }
        var ok = fchmod(fd, mode) == 0
        var code: Int32 = 0
        if ok {
            ok = SystemCall.writeAll(fd, bytes)
            if !ok { code = errno }
        } else {
            code = errno
        }
        if ok && fsync(fd) != 0 { (ok, code) = (false, errno) }
        close(fd)
        if ok && rename(temporary, path) != 0 { (ok, code) = (false, errno) }
        guard ok else {
            unlink(temporary)
            throw KeysatError.system(
                code == ENOSPC || code == EIO || code == EDQUOT ? .io : .cannotCreate,
                "cannot write \(what) \(path)", errno: code)
        }
    }

    private static func failure(_ code: Int32, path: String, what: String) -> KeysatError {
        switch code {
        case ELOOP:
            return KeysatError(
                .permission, "\(what) \(path) is a symbolic link; refusing to follow it: remove it",
                errno: code)
        case ENXIO:
            // O_NONBLOCK|O_WRONLY on a FIFO with no reader.
            return KeysatError(
                .cannotCreate,
                "\(what) \(path) is not a regular file (a FIFO); remove it or choose another path",
                errno: code)
        case EACCES, EPERM, EROFS:
            return KeysatError.system(.permission, "cannot write \(what) \(path)", errno: code)
        case ENOSPC, EIO, EDQUOT:
            return KeysatError.system(.io, "cannot write \(what) \(path)", errno: code)
        default:
            return KeysatError.system(.cannotCreate, "cannot create \(what) \(path)", errno: code)
        }
    }

    private static func kindName(_ mode: UInt32) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: "a FIFO"
        case S_IFDIR: "a directory"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        case S_IFLNK: "a symbolic link"
        default: "not a regular file"
        }
    }

    /// 16 hex digits from the kernel's random source: a name another user cannot guess ahead.
    private static func randomSuffix() -> String {
        // SystemRandomNumberGenerator reads getrandom(2).
        let value = UInt64.random(in: .min ... .max)
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
