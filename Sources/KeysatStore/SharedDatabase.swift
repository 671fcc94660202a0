import KeysatCore

#if canImport(Glibc)
    import Glibc
#endif

/// The group model: the database and its folder belong to the `keysat` user and a group; the
/// licensing service's user is a member of the group, and so may enqueue, while users outside
/// it get nothing (docs/DESIGN.md, keysat-webhooks(1) `init --group`).
///
/// The folder is setgid (mode 2770), so the WAL and shared-memory files SQLite creates, and the
/// kick and lock files, keep the group whoever creates them; the files are 0660. SQLite gives
/// its WAL and shared-memory files the database file's mode, whatever the umask.
public enum SharedDatabase {
    /// The id of `group`, a name or a number as chown(1) takes it.
    /// - Throws: `KeysatError` (data) for an unknown group.
    public static func groupID(_ group: String) throws -> UInt32 {
        if let entry = getgrnam(group) { return entry.pointee.gr_gid }
        if !group.isEmpty, group.allSatisfy({ $0.isASCII && $0.isNumber }), let number = UInt32(group),
            number < UInt32.max
        {
            return number
        }
        throw KeysatError(.data, "no group named '\(group)' (create it with 'groupadd \(group)')")
    }

    /// Gives the database at `path`, its folder and its companion files to `group`, with group
    /// read and write and no access for others. The folder is changed only where
    /// `DatabaseFolder.checkMayShare` allows it (check that before creating the database, so that
    /// a refusal changes nothing).
    ///
    /// - Returns: the group's id.
    /// - Throws: `KeysatError`: `data` for an unknown group, `cannotCreate` for a folder that
    ///   may not be given to the group, `permission` when this user may not give the files to
    ///   it (it must own them and be in the group, or be root).
    @discardableResult
    public static func share(_ path: String, group: String) throws -> UInt32 {
        let gid = try groupID(group)
        let folder = DatabaseFolder(database: path)
        // Everything through the folder as opened: a path swapped meanwhile changes nothing.
        let fd = try folder.open()
        defer { close(fd) }
        try folder.checkMayShare(fd, gid: gid)
        if try folder.needsChange(fd, gid: gid) { try apply(fd, folder.path, gid: gid, mode: 0o2770, what: "folder") }
        let base = String(path.split(separator: "/", omittingEmptySubsequences: false).last ?? Substring(path))
        for suffix in ["", "-wal", "-shm", ".kick", ".deliver.lock"] {
            let name = base + suffix
            // Opened beside the database in the folder opened above, never through a link, and
            // not waiting on a FIFO.
            let file = openat(fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            if file < 0 {
                let code = errno
                if code == ENOENT { continue }
                if code == ELOOP {
                    throw KeysatError(.cannotCreate, "\(folder.path)/\(name) is a symbolic link; remove it", errno: nil)
                }
                throw KeysatError.system(.permission, "cannot open \(folder.path)/\(name)", errno: code)
            }
            defer { close(file) }
            var info = stat()
            guard fstat(file, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
                throw KeysatError(.cannotCreate, "\(folder.path)/\(name) is not a regular file; remove it", errno: nil)
            }
            try apply(file, "\(folder.path)/\(name)", gid: gid, mode: 0o660, what: "file")
        }
        return gid
    }

    /// Gives what `fd` is open on to the group, with `mode`: on the descriptor, never the path.
    private static func apply(_ fd: Int32, _ path: String, gid: gid_t, mode: mode_t, what: String) throws {
        guard fchown(fd, UInt32.max, gid) == 0 else {
            let code = errno
            throw KeysatError.system(
                code == EPERM || code == EACCES ? .permission : .io,
                "cannot give \(what) \(path) to the group", errno: code,
                advice: "run as root, or as its owner and a member of the group")
        }
        guard fchmod(fd, mode) == 0 else {
            let code = errno
            throw KeysatError.system(.permission, "cannot change the mode of \(what) \(path)", errno: code)
        }
    }
}
