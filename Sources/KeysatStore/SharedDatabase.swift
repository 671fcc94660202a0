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
        try folder.checkMayShare(gid: gid)
        if try folder.needsChange(gid: gid) { try apply(folder.path, gid: gid, mode: 0o2770, what: "folder") }
        for file in [
            path, path + "-wal", path + "-shm", Kick.defaultPath(database: path),
            Kick.defaultLockPath(database: path),
        ] {
            var info = stat()
            guard lstat(file, &info) == 0 else { continue }
            guard info.st_mode & S_IFMT == S_IFREG else {
                throw KeysatError(.cannotCreate, "\(file) is not a regular file; remove it", errno: nil)
            }
            try apply(file, gid: gid, mode: 0o660, what: "file")
        }
        return gid
    }

    private static func apply(_ path: String, gid: gid_t, mode: mode_t, what: String) throws {
        // No link is followed: lchown, and chmod only after checking it is not a link.
        guard lchown(path, UInt32.max, gid) == 0 else {
            let code = errno
            throw KeysatError.system(
                code == EPERM || code == EACCES ? .permission : .io,
                "cannot give \(what) \(path) to the group", errno: code,
                advice: "run as root, or as its owner and a member of the group")
        }
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT != S_IFLNK, chmod(path, mode) == 0 else {
            let code = errno
            throw KeysatError.system(.permission, "cannot change the mode of \(what) \(path)", errno: code)
        }
    }
}
