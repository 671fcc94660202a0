public import KeysatCore
import KeysatStore

#if canImport(Glibc)
    import Glibc
#endif

/// The exclusive lock that keeps keysat-deliver runs from overlapping.
///
/// An `flock(2)` on a lock file: the kernel releases it when the process ends in any way,
/// so a crashed run never blocks later ones. Released in `deinit`.
public final class DeliverLock {
    private let fd: Int32
    public let path: String

    /// The default lock file for a database: its path plus `.deliver.lock`.
    public static func defaultPath(database: String) -> String { Kick.defaultLockPath(database: database) }

    /// Takes the lock, waiting up to `waitSeconds` for another run to release it.
    ///
    /// - Returns: the held lock, or `nil` when another run still holds it.
    /// - Throws: `KeysatError` when the lock file cannot be opened or created.
    ///
    /// The lock file is opened as `OwnedFile` opens files: a link, a FIFO or another user's file
    /// planted at the path is refused, never followed or waited on.
    public static func acquire(path: String, waitSeconds: Double = 0, sharing: OwnedFile.Sharing) throws
        -> DeliverLock?
    {
        let fd: Int32
        do {
            fd = try OwnedFile.open(
                path, what: "lock file", mode: sharing.mode, trustedGroup: sharing.trustedGroup)
        } catch var error as KeysatError {
            error.message += " (choose another with --lock-file)"
            throw error
        }
        // Clamped: more than 30 years (or not a number) is a wait for ever, and must not overflow.
        let wait = waitSeconds >= 0 && waitSeconds < 1e9 ? waitSeconds : waitSeconds < 0 ? 0 : 1e9
        let end = SystemCall.monotonicMilliseconds() + Int64((wait * 1000).rounded(.up))
        while true {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { return DeliverLock(fd: fd, path: path) }
            let code = errno
            if code != EWOULDBLOCK && code != EINTR {
                close(fd)
                throw KeysatError.system(.io, "cannot lock \(path)", errno: code)
            }
            if SystemCall.monotonicMilliseconds() >= end {
                close(fd)
                return nil
            }
            usleep(20_000)
        }
    }

    /// Takes over a lock already held through descriptor `fd` (inherited from keysat-enqueue
    /// --kick=spawn), or `nil` when `fd` holds no lock on `path`.
    public static func adopt(fd: Int32, path: String) -> DeliverLock? {
        var descriptor = stat()
        var file = stat()
        guard fstat(fd, &descriptor) == 0, stat(path, &file) == 0, descriptor.st_ino == file.st_ino,
            descriptor.st_dev == file.st_dev, flock(fd, LOCK_EX | LOCK_NB) == 0
        else { return nil }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return DeliverLock(fd: fd, path: path)
    }

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
