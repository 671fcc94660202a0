import KeysatCore

#if canImport(Glibc)
    import Glibc
#endif

/// The folder that holds a database, and whether `init --group` may give it to a group (issue
/// 20: `--db varlib/keysat.db --group G` made a neighbouring service's folder 2770 and locked it
/// out; a 1777 folder lost its sticky bit; `/var/lib` or `/` would have been changed the same way).
///
/// A folder's mode is changed only when it holds nothing but the database and the files this
/// project and SQLite make beside it (`companionSuffixes`), is not sticky, and is not one of the
/// system's own folders. A folder already in the group model (the group, mode 2770) needs no
/// change and is accepted whatever else it holds: that is how an operator shares a folder of
/// their own choosing, by hand.
public struct DatabaseFolder {
    public let database: String
    public let path: String

    /// The files made beside a database: SQLite's (`-wal`, `-shm`, `-journal`), the kick and
    /// lock files (`Kick`). (Temporary names `OwnedFile.replace` writes them under are allowed too.)
    public static let companionSuffixes = ["", "-wal", "-shm", "-journal", ".kick", ".deliver.lock"]

    /// Folders that belong to the system or to many programs: never given to one group, even
    /// empty (a fresh host's /srv is).
    public static let systemFolders: Set<String> = [
        "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/media", "/mnt", "/opt",
        "/proc", "/root", "/run", "/run/user", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/bin",
        "/usr/lib",
        "/usr/local", "/usr/local/bin", "/usr/local/lib", "/usr/local/share", "/usr/share", "/var",
        "/var/backups", "/var/cache", "/var/lib", "/var/local", "/var/log", "/var/mail", "/var/opt",
        "/var/spool", "/var/tmp",
    ]

    public init(database: String) {
        self.database = database
        self.path = FilePath.folder(of: database)
    }

    /// The folder opened without following a link (`O_NOFOLLOW`, `O_DIRECTORY`): every check
    /// and every change is made on what was opened, never on the path again, so a folder swapped
    /// for a link to another between the check and the change is not changed (the adversarial
    /// pass of issue 20 made a root-owned folder 2770 that way, renaming in a loop).
    /// - Returns: the descriptor; the caller closes it.
    public func open() throws -> Int32 {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ELOOP || code == ENOTDIR {
                throw refusal("is not a folder but a link or another file; name the real folder in --db")
            }
            throw KeysatError.system(.noInput, "cannot read the database's folder \(path)", errno: code)
        }
        return fd
    }

    /// Whether the folder (opened as `fd`) must change to be in the group model for `gid`.
    public func needsChange(_ fd: Int32, gid: UInt32) throws -> Bool {
        let info = try status(fd)
        return info.st_gid != gid || info.st_mode & 0o7777 != 0o2770
    }

    /// Refuses, before anything is created or changed, a folder that may not be given to the
    /// group: see the type's summary.
    /// - Throws: `KeysatError` (cannotCreate, 73) naming the folder and why.
    public func checkMayShare(gid: UInt32) throws {
        let fd = try open()
        defer { close(fd) }
        try checkMayShare(fd, gid: gid)
    }

    /// `checkMayShare` on the folder opened as `fd`.
    public func checkMayShare(_ fd: Int32, gid: UInt32) throws {
        guard try needsChange(fd, gid: gid) else { return }
        let info = try status(fd)
        if info.st_mode & S_ISVTX != 0 {
            throw refusal("is sticky (a folder shared by all, like /tmp) and keeps its mode", byHand: false)
        }
        // The very folder opened, compared with each system folder by device and inode: a link,
        // a path with `..` or a bind mount of a system folder is that folder.
        for folder in Self.systemFolders.sorted() {
            var system = stat()
            if stat(folder, &system) == 0 && system.st_dev == info.st_dev && system.st_ino == info.st_ino {
                throw refusal("is \(folder == path ? "" : folder + ", ")one of the system's own folders", byHand: false)
            }
        }
        let others = try neighbours(fd)
        if let first = others.first {
            let more = others.count > 1 ? " and \(others.count - 1) more" : ""
            throw refusal(
                "holds '\(TerminalText.escape(first))'\(more) besides the database's own files")
        }
    }

    /// The entries of the folder that are neither the database nor one of its companions.
    func neighbours() throws -> [String] {
        let fd = try open()
        defer { close(fd) }
        return try neighbours(fd)
    }

    private func neighbours(_ fd: Int32) throws -> [String] {
        let listing = dup(fd)
        guard listing >= 0, let directory = fdopendir(listing) else {
            let code = errno
            if listing >= 0 { close(listing) }
            throw KeysatError.system(
                .permission, "cannot list the database's folder \(path) to check it holds only the database",
                errno: code)
        }
        defer { closedir(directory) }
        rewinddir(directory)
        let base =
            database.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? database
        let own = Set(Self.companionSuffixes.map { base + $0 })
        var others: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name == "." || name == ".." || own.contains(name) { continue }
            // OwnedFile.replace writes the kick file through a temporary name beside it.
            if own.contains(where: { name.hasPrefix($0 + ".tmp.") }) { continue }
            others.append(name)
        }
        return others.sorted()
    }

    private func status(_ fd: Int32) throws -> stat {
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw KeysatError.system(.noInput, "cannot read the database's folder \(path)", errno: errno)
        }
        return info
    }

    private func refusal(_ why: String, byHand: Bool = true) -> KeysatError {
        let advice =
            byHand
            ? ", or give this one to the group yourself (chgrp GROUP FOLDER; chmod 2770 FOLDER) and run init --group again"
            : ""
        return KeysatError(
            .cannotCreate,
            "will not give the folder '\(TerminalText.escape(path))' to the group: it \(why); put the database in a folder of its own, such as /var/lib/keysat\(advice)"
        )
    }
}
