public import KeysatCore

#if canImport(Glibc)
    import Glibc
#endif

/// Telling keysat-deliver that deliveries are waiting, without a resident process.
///
/// The trigger file next to the database grows by one byte per kick. A systemd path unit
/// (`PathChanged=`) starts keysat-deliver when it is written; a running keysat-deliver compares
/// its size and time before and after a round and goes round again when they changed. Growing
/// rather than touching matters: file times move in steps of a clock tick, so two kicks within
/// one tick would look like one, but a size never stays the same after a write.
public enum Kick {
    /// The default lock file of keysat-deliver runs: the database path plus `.deliver.lock`.
    public static func defaultLockPath(database: String) -> String { database + ".deliver.lock" }

    /// The default trigger file for a database.
    public static func defaultPath(database: String) -> String { database + ".kick" }

    /// The trigger file's state, to compare before and after a round.
    public struct Stamp: Equatable, Sendable {
        var size: Int64
        var seconds: Int
        var nanoseconds: Int
    }

    /// The trigger file's current state (`nil` when it does not exist).
    public static func stamp(_ path: String) -> Stamp? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return Stamp(
            size: Int64(info.st_size), seconds: info.st_mtim.tv_sec, nanoseconds: info.st_mtim.tv_nsec)
    }

    /// Empties the trigger file (a run does this before it looks at it) so it never grows for long.
    /// A link or a special file planted there is left alone (`OwnedFile`): only size changes count.
    public static func reset(_ path: String, sharing: OwnedFile.Sharing) {
        guard stamp(path) != nil,
            let fd = try? OwnedFile.open(
                path, what: "kick file", mode: sharing.mode, trustedGroup: sharing.trustedGroup)
        else { return }
        _ = ftruncate(fd, 0)
        close(fd)
    }

    /// Writes one byte to the trigger file and closes it. A new file is 0600, or 0660 when the
    /// database is shared with its group, so that keysat-deliver can empty what the service wrote.
    /// - Throws: `KeysatError` when the file cannot be written, or is a link or a special file.
    public static func touch(_ path: String, sharing: OwnedFile.Sharing) throws {
        let fd = try OwnedFile.open(
            path, what: "kick file", mode: sharing.mode, append: true, trustedGroup: sharing.trustedGroup)
        defer { close(fd) }
        guard SystemCall.writeAll(fd, [0x0A]) else {
            let code = errno
            throw KeysatError.system(.io, "cannot write the kick file \(path)", errno: code)
        }
    }
}
