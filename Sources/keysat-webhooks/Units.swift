import KeysatBackends
import KeysatCommandLine
import KeysatCommandTree
import KeysatCore
import KeysatDelivery
import KeysatReceiver
import KeysatStore

#if canImport(Glibc)
    import Glibc
#endif

extension KeysatWebhooks {
    struct Units: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the systemd units (service, timer, path) for a database.",
            usage: "keysat-webhooks units [--db <path>] [--bindir <dir>] [--output-dir <dir>]",
            discussion: """
                The shipped units serve /var/lib/keysat/keysat.db. For a database elsewhere (Keysat's own, \
                say), the service must be allowed to write its folder and the path unit must watch its \
                kick file: install these instead, e.g. 'keysat-webhooks units --db PATH --output-dir \
                /etc/systemd/system', then 'systemctl daemon-reload'. Set the same path as KEYSAT_DB in \
                /etc/default/keysat-webhooks for the cron file and the other tools. --db and --bindir must be \
                absolute and normal (no '.', '..', '//' or trailing '/') without white space, control \
                characters, quotes, backslashes or '$', and --db not directly in a system folder; '%' is \
                escaped as '%%' for systemd.

                For a PostgreSQL database (--db postgresql://...) the service writes no database folder, \
                reaches the server over the network or its Unix socket, and starts after a local \
                postgresql.service; there is no path unit, since a lingering run is woken by NOTIFY. The \
                URI must hold no password (a unit file is readable by every user): use a passfile \
                (PGPASSFILE in /etc/default/keysat-webhooks, which overrides the unit's KEYSAT_DB).
                """)

        @Option(
            help: ArgumentHelp(
                "Where the programs are installed (default: beside this one).", valueName: "dir"),
            completion: .directory)
        var bindir: String?

        @Option(
            help: ArgumentHelp("Write the three files into this folder.", valueName: "dir"),
            completion: .directory)
        var outputDir: String?

        @Flag(help: "Print {\"files\": [{\"name\", \"path\", \"text\"}]} as a JSON object.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func validate() throws { _ = try units() }

        /// Every value a unit holds, validated (`UnitPath`); the default bindir too, since the
        /// folder this program runs from may be anything.
        func units() throws -> SystemdUnits {
            let location = database.resolvedPath
            let programs = try UnitPath(
                bindir ?? Self.ownFolder(),
                option: bindir == nil ? "--bindir (default: this program's folder)" : "--bindir")
            if Backends.kind(of: location) == .postgresql {
                let uri = try UnitPath(
                    postgres: location, option: database.path == nil ? "KEYSAT_DB" : "--db")
                return SystemdUnits(database: uri, folder: nil, bindir: programs)
            }
            let db = try UnitPath(location, option: "--db")
            return SystemdUnits(database: db, folder: try db.databaseFolder(option: "--db"), bindir: programs)
        }

        func run() throws {
            let units = try units()
            if let outputDir {
                for (name, text) in units.files {
                    try OwnedFile.replace(
                        outputDir + "/" + name, with: Array(text.utf8), mode: 0o644, what: "unit file")
                }
            }
            if json {
                try Output.standard(
                    JSONText.object([
                        (
                            "files",
                            JSONText.array(
                                units.files.map { name, text in
                                    JSONText.object([
                                        ("name", JSONText.string(name)),
                                        ("path", JSONText.string(outputDir.map { $0 + "/" + name })),
                                        ("text", JSONText.string(text)),
                                    ])
                                })
                        )
                    ]) + "\n")
                return
            }
            guard outputDir == nil else { return }
            for (name, text) in units.files {
                try Output.standard("# \(name)\n\(text)\n")
            }
        }

        static func ownFolder() -> String { FilePath.ownFolder() ?? "/usr/bin" }
    }
}

/// The systemd units of keysat-deliver for one database: the text of cron/*.service, *.timer
/// and *.path is exactly what this makes for /var/lib/keysat/keysat.db (a test checks).
struct SystemdUnits {
    static let defaultDatabase = "/var/lib/keysat/keysat.db"
    /// The database file, or a PostgreSQL URI.
    var database: UnitPath
    /// The database file's folder; `nil` for PostgreSQL, whose files are the server's.
    var folder: UnitPath?
    var bindir: UnitPath

    var files: [(String, String)] {
        // PostgreSQL has no kick file to watch: enqueues NOTIFY lingering runs.
        let units = [("keysat-deliver.service", service), ("keysat-deliver.timer", timer)]
        return folder == nil ? units : units + [("keysat-deliver.path", path)]
    }

    /// Under /var/lib/keysat systemd makes and owns the folder; elsewhere it must be writable.
    private var storage: String {
        guard let folder else {
            return """
                # The queue is in PostgreSQL: no database file to write. The server is reached over the
                # network or its Unix socket (PrivateNetwork= is not set); its password, if any, is in the
                # passfile PGPASSFILE names in /etc/default/keysat-webhooks, readable by the user keysat.
                """
        }
        if database.path == Self.defaultDatabase {
            return """
                # The database folder: group-shared and setgid, so that the licensing service's user (in the
                # keysat group) can enqueue and the WAL files keep the group (keysat-webhooks(1), init --group).
                StateDirectory=keysat
                StateDirectoryMode=2770
                """
        }
        return """
            # The database folder (made by 'keysat-webhooks init --group', not by systemd).
            ReadWritePaths=\(folder.setting)
            """
    }

    var service: String {
        """
        [Unit]
        Description=Send due Keysat webhooks
        Documentation=man:keysat-deliver(1)
        After=\(after)
        Wants=network-online.target

        [Service]
        Type=oneshot
        User=keysat
        Group=keysat
        # Defaults; /etc/default/keysat-webhooks (read by the cron file too) may override them.
        Environment=KEYSAT_DB=\(database.setting)
        Environment=KEYSAT_METRICS_FILE=/var/cache/keysat-webhooks/keysat_webhooks.prom
        EnvironmentFile=-/etc/default/keysat-webhooks
        ExecStart=\(bindir.setting)/keysat-deliver --linger 1
        # A run stops starting new attempts on SIGTERM and records what is in flight.
        TimeoutStopSec=30
        KillMode=mixed

        \(storage)
        # The metrics file's folder: node_exporter, another user, reads it.
        CacheDirectory=keysat-webhooks
        CacheDirectoryMode=0755

        # Sandbox: the service reads its database and writes nothing else.
        NoNewPrivileges=yes
        ProtectSystem=strict
        ProtectHome=yes
        PrivateTmp=yes
        PrivateDevices=yes
        PrivateMounts=yes
        DevicePolicy=closed
        ProtectKernelTunables=yes
        ProtectKernelModules=yes
        ProtectKernelLogs=yes
        ProtectControlGroups=yes
        ProtectClock=yes
        ProtectHostname=yes
        ProtectProc=invisible
        ProcSubset=pid
        RemoveIPC=yes
        # AF_UNIX: name resolution may ask systemd-resolved or nscd over a local socket.
        RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
        # A second layer under keysat-deliver's network policy, which refuses these too. (PrivateUsers=
        # is not set: it would hide the group that the licensing service's files are shared through.)
        IPAddressDeny=link-local multicast
        RestrictNamespaces=yes
        RestrictRealtime=yes
        RestrictSUIDSGID=yes
        LockPersonality=yes
        MemoryDenyWriteExecute=yes
        SystemCallArchitectures=native
        SystemCallFilter=@system-service
        SystemCallFilter=~@privileged @resources
        CapabilityBoundingSet=
        AmbientCapabilities=
        # The files a run creates get their modes explicitly (the lock and kick files follow the
        # database's group sharing, the metrics file is 0644), so the umask can be strict.
        UMask=0077

        """
    }

    /// A PostgreSQL server on this host is started first (no effect where there is none).
    private var after: String {
        folder == nil ? "network-online.target postgresql.service" : "network-online.target"
    }

    var timer: String {
        """
        [Unit]
        Description=Send due Keysat webhooks every 30 seconds
        Documentation=man:keysat-deliver(1)

        [Timer]
        OnBootSec=30s
        OnUnitInactiveSec=30s
        AccuracySec=1s

        [Install]
        WantedBy=timers.target

        """
    }

    var path: String {
        """
        [Unit]
        Description=Send Keysat webhooks as soon as an event is queued
        Documentation=man:keysat-deliver(1) man:keysat-enqueue(1)

        [Path]
        # keysat-enqueue --kick (or KEYSAT_KICK=1) appends to this file after each event it queues.
        # A run that is going on when it changes goes round once more, so no kick is lost; the timer
        # stays as the safety net for retries.
        PathChanged=\(database.setting).kick
        Unit=keysat-deliver.service

        [Install]
        WantedBy=paths.target

        """
    }
}
