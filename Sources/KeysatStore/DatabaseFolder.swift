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

    /// Whether the folder must change to be in the group model for `gid`.
    public func needsChange(gid: UInt32) throws -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            throw KeysatError.system(.noInput, "cannot read the database's folder \(path)", errno: errno)
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw refusal("is not a folder but a link or another file; name the real folder in --db")
        }
        return info.st_gid != gid || info.st_mode & 0o7777 != 0o2770
    }

    /// Refuses, before anything is created or changed, a folder that may not be given to the
    /// group: see the type's summary.
    /// - Throws: `KeysatError` (cannotCreate, 73) naming the folder and why.
    public func checkMayShare(gid: UInt32) throws {
        guard try needsChange(gid: gid) else { return }
        var info = stat()
        guard lstat(path, &info) == 0 else {
            throw KeysatError.system(.noInput, "cannot read the database's folder \(path)", errno: errno)
        }
        if info.st_mode & S_ISVTX != 0 {
            throw refusal("is sticky (a folder shared by all, like /tmp) and keeps its mode", byHand: false)
        }
        let real = Self.realPath(path) ?? path
        if Self.systemFolders.contains(real) {
            throw refusal(
                "is \(real == path ? "" : real + ", ")one of the system's own folders", byHand: false)
        }
        let others = try neighbours()
        if let first = others.first {
            let more = others.count > 1 ? " and \(others.count - 1) more" : ""
            throw refusal(
                "holds '\(TerminalText.escape(first))'\(more) besides the database's own files")
        }
    }

    /// The entries of the folder that are neither the database nor one of its companions.
    func neighbours() throws -> [String] {
        guard let directory = opendir(path) else {
            throw KeysatError.system(
                .permission, "cannot list the database's folder \(path) to check it holds only the database",
                errno: errno)
        }
        defer { closedir(directory) }
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

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
