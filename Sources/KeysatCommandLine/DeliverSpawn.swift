import KeysatBackends
public import KeysatCore
public import KeysatStore

#if canImport(Glibc)
    import Glibc
#endif

extension Kick {
    /// How enqueue kicks.
    public enum Mode: String, Sendable {
        /// Write the trigger file only (a systemd path unit starts the run).
        case file
        /// Write the trigger file, and start keysat-deliver itself when no run holds the lock.
        case spawn
    }

    /// Starts `keysat-deliver` detached (a new session, standard streams on /dev/null, no other
    /// descriptor inherited) unless a run holds the lock right now; returns at once. Failing to
    /// start it is not an error of the enqueue: the timer is the safety net.
    ///
    /// The lock is taken here and handed to the child as descriptor 3 (`--lock-fd 3`): until the
    /// child exits, the next events of a burst find it held and only write the kick file, which
    /// the running run picks up. The run also lingers a second after its last round for the same
    /// reason. So a burst makes one run, not one per event.
    ///
    /// The run gets this process's environment plus the `KEYSAT_*` settings of `defaultsFile`
    /// (`DefaultsFile`) that the environment does not set, as the service and the cron line
    /// read them.
    ///
    /// - Returns: whether a run was started.
    @discardableResult
    public static func spawnDeliver(
        database: String, lockPath: String, executable: String, defaultsFile: String = DefaultsFile.path()
    ) -> Bool {
        let sharing = OwnedFile.Sharing(database: database)
        guard
            let lock = try? OwnedFile.open(
                lockPath, what: "lock file", mode: sharing.mode, trustedGroup: sharing.trustedGroup)
        else { return false }
        defer { close(lock) }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else { return false }
        let arguments = [
            executable, "--db", database, "--lock-file", lockPath, "--lock-fd", "3", "--linger", "1",
        ]
        let started = spawn(
            executable, arguments, holding: lock, environment: runEnvironment(defaultsFile: defaultsFile))
        if !started { flock(lock, LOCK_UN) }
        return started
    }

    /// On PostgreSQL: starts `keysat-deliver` detached, as `spawnDeliver(database:…)` does, unless
    /// a run this user started so for this queue is still going on; returns at once.
    ///
    /// Runs on PostgreSQL take no lock, so a burst would start one run per event: a lock file
    /// of this host and user (`spawnGuardPath`) is taken here and held by the run until it
    /// exits, while the enqueues of the burst only notify it. The location goes to the run in
    /// its environment (`KEYSAT_DB`), never on its command line, as it may hold a password.
    ///
    /// - Returns: whether a run was started.
    @discardableResult
    public static func spawnDeliver(
        postgres location: String, executable: String, defaultsFile: String = DefaultsFile.path()
    ) -> Bool {
        guard
            let guardFile = try? OwnedFile.open(
                spawnGuardPath(location: location), what: "lock file", mode: 0o600, trustedGroup: nil)
        else { return false }
        defer { close(guardFile) }
        guard flock(guardFile, LOCK_EX | LOCK_NB) == 0 else { return false }
        var environment = runEnvironment(defaultsFile: defaultsFile).filter { !$0.hasPrefix("KEYSAT_DB=") }
        environment.append("KEYSAT_DB=" + location)
        let started = spawn(
            executable, [executable, "--linger", "1"], holding: guardFile, environment: environment)
        if !started { flock(guardFile, LOCK_UN) }
        return started
    }

    /// The lock file that keeps `keysat-enqueue --kick=spawn` on PostgreSQL from starting a run
    /// while one it started is going on: in this user's runtime folder (`$XDG_RUNTIME_DIR`, else
    /// /tmp), named after the user and the queue (a hash of its location without password).
    /// Another user's file planted there is refused (`OwnedFile`): no run is started then, and
    /// the timer sends the event.
    public static func spawnGuardPath(location: String, environment: Environment = .process) -> String {
        let folder = environment["XDG_RUNTIME_DIR"].flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "/tmp"
        let digest = SHA256.hash(Array(Backends.displayName(location).utf8)).prefix(8)
        let hex = digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        return "\(folder)/keysat-deliver-spawn-\(getuid())-\(hex).lock"
    }

    /// Starts `arguments` detached: a new session, standard streams on /dev/null, `lock` as
    /// descriptor 3 and no other descriptor inherited.
    private static func spawn(
        _ executable: String, _ arguments: [String], holding lock: Int32, environment: [String]
    ) -> Bool {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for target in Int32(0)...2 {
            posix_spawn_file_actions_addopen(
                &actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, lock, 3)
        _ = closeFrom(&actions, 4)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, spawnSetSID)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { for pointer in envp { free(pointer) } }
        var pid: pid_t = 0
        let spawn = executable.contains("/") ? posix_spawn : posix_spawnp
        return spawn(&pid, executable, &actions, &attributes, &argv, &envp) == 0
    }

    /// This process's environment, then the defaults file's settings it does not have.
    static func runEnvironment(defaultsFile: String) -> [String] {
        var entries: [String] = []
        var pointer = environ
        while let entry = pointer.pointee {
            entries.append(String(cString: entry))
            pointer += 1
        }
        // The last assignment of a name wins, as with systemd's EnvironmentFile= and sh's '.'.
        var added: [String: Int] = [:]
        for (name, value) in DefaultsFile.assignments(at: defaultsFile) where getenv(name) == nil {
            if let index = added[name] {
                entries[index] = name + "=" + value
            } else {
                added[name] = entries.count
                entries.append(name + "=" + value)
            }
        }
        return entries
    }

    // glibc (2.34+) declares these only under _GNU_SOURCE, which Swift's Glibc module does not set.
    /// POSIX_SPAWN_SETSID from <spawn.h>: the child starts a new session.
    private static let spawnSetSID: Int16 = 0x80

    /// keysat-deliver beside the running program, else the one on PATH.
    public static func deliverExecutable() -> String {
        if let folder = FilePath.ownFolder() {
            let candidate = folder + "/keysat-deliver"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return "keysat-deliver"
    }

}

/// posix_spawn_file_actions_addclosefrom_np(3): close every descriptor from `from` on in the child.
@_silgen_name("posix_spawn_file_actions_addclosefrom_np")
private func closeFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ from: Int32) -> Int32
