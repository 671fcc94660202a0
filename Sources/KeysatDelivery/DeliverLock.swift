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
    public static func acquire(path: String, waitSeconds: Double = 0) throws -> DeliverLock? {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd < 0 {
            let code = errno
            let kind: KeysatError.Kind =
                code == EACCES || code == EPERM || code == EROFS ? .permission : .cannotCreate
            throw KeysatError(
                kind,
                "cannot open lock file \(path): \(String(cString: strerror(code))) (choose another with --lock-file)"
            )
        }
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let end = Double(deadline.tv_sec) + Double(deadline.tv_nsec) / 1e9 + waitSeconds
        while true {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { return DeliverLock(fd: fd, path: path) }
            let code = errno
            if code != EWOULDBLOCK && code != EINTR {
                close(fd)
                throw KeysatError(.io, "cannot lock \(path): \(String(cString: strerror(code)))")
            }
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            if Double(now.tv_sec) + Double(now.tv_nsec) / 1e9 >= end {
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
