// keysat-deliver: sends every due webhook delivery once, records the outcomes, exits.
//
// The command line is parsed by hand (OptionParser) rather than with swift-argument-parser:
// this program runs every 30–60 s, mostly with nothing to do, and its idle run is budgeted
// (see docs/BENCHMARKS.md). It is one of the three names of the one installed program
// (issue 24): Sources/keysat-webhooks/main.swift calls `main()` when run as keysat-deliver.

import KeysatBackends
import KeysatCommandLine
import KeysatCore
import KeysatStore

#if canImport(Glibc)
    import Glibc
#endif

/// keysat-deliver's command line: its help, its options, and the run it starts.
public enum DeliverCommand {
    static let name = "keysat-deliver"

    static let usage = """
        USAGE: keysat-deliver [OPTIONS]

        Sends every due webhook delivery once, records each outcome, reschedules failures with
        backoff (10 attempts), and exits. Runs never overlap: a run that finds the lock held exits
        0 at once. On PostgreSQL (--db postgresql://...) runs take no lock: several, on this host or
        others, share the queue, each delivery claimed by one of them with a lease. Silent when all
        went well; one warning per delivery given up on.

        OPTIONS:
          --db <path>                   Database file, or postgresql:// URI with no password in it
                                        (default $KEYSAT_DB, else /var/lib/keysat/keysat.db).
          --busy-timeout <ms>           Wait this many milliseconds for a locked database (default
                                        5000).
          --lock-file <path>            Lock file (default: the database path plus .deliver.lock).
                                        SQLite only.
          --wait <duration>             Wait this long for a running run to finish, then exit 75.
          --concurrency <n>             Requests in flight at once (default 16).
          --per-endpoint <n>            Requests in flight to one endpoint at once (default 4).
          --breaker <k>                 Stop trying an endpoint for this run after this many transport
                                        failures in a row (default 3).
          --max-runtime <duration>      Stop starting attempts after this long; in-flight ones finish.
          --timeout <duration>          Time limit of one attempt (default 10s).
          --connect-timeout <duration>  Time limit for connecting (default 5s).
          --limit <n>                   Attempt at most this many deliveries in this run.
          --allow-network <cidr>        Allow this network although the policy refuses it
                                        (repeatable).
          --allow-private-networks      Allow loopback, RFC 1918, unique local and CGNAT addresses.
          --ca-file <path>              Trust this CA bundle (PEM) for TLS instead of the system's.
          --https-only                  Refuse plain http endpoints.
          --disable-after <duration>    Disable an endpoint failing for longer than this (default 5d;
                                        0 never); at 50 % and 90 % of it, enqueue
                                        webhook.endpoint.failing for endpoints that subscribe to it.
          --probe-every <duration>      Probe an endpoint disabled by --disable-after this often
                                        (default 1h; 0 never) by sending its newest dead delivery
                                        again; a 2xx enables it and re-queues what its outage
                                        dead-lettered.
          --metrics-file <path>         After the run, write Prometheus metrics to this file
                                        (atomically, mode 0644; default $KEYSAT_METRICS_FILE, else
                                        none).
          --kick-file <path>            The file keysat-enqueue --kick writes (default: the database
                                        path plus .kick); when it changes during a run, the run goes
                                        round again. SQLite only: on PostgreSQL a run listens for
                                        NOTIFY keysat_webhooks, which keysat-enqueue sends.
          --linger <duration>           After a round, wait this long for another kick or NOTIFY
                                        before exiting (default 0), so that a burst of events is
                                        served by one run.
          --log-level <level>           error, warn (default), info or debug.
          --dry-run                     List what is due and would be sent; send nothing, change
                                        nothing.
          -v, --verbose                 A one-line summary on standard error (--log-level info).
          --json                        The run's counts as a JSON object on standard output; with
                                        --dry-run, the deliveries as a JSON array.
          --version                     Show the version.
          -h, --help                    Show help information.

        Durations: 30, 0.5, 30s, 15m, 24h, 7d; at least 1ms (0 only for --wait, --linger,
        --disable-after and --probe-every).
        Environment: KEYSAT_DB, KEYSAT_ALLOW_NETWORKS, KEYSAT_METRICS_FILE.
        EXIT STATUS: 0 the run finished (whatever the receivers said) or another run held the lock;
        64 usage; 65 damaged database; 66 no database; 71 out of descriptors or memory; 73 cannot
        create the lock file; 74 I/O error (a run that cannot record sends nothing);
        75 database busy or lock still held after --wait; 77 permission denied; 69 PostgreSQL
        server unreachable or libpq5 missing. See keysat-deliver(1).

        """

    static let parser = OptionParser([
        .init("--db", value: true, completion: .file), .init("--busy-timeout", value: true),
        .init("--lock-file", value: true, completion: .file),
        .init("--wait", value: true), .init("--concurrency", value: true),
        .init("--per-endpoint", value: true),
        .init("--breaker", value: true), .init("--max-runtime", value: true), .init("--timeout", value: true),
        .init("--connect-timeout", value: true), .init("--limit", value: true),
        .init("--allow-network", value: true),
        .init("--allow-private-networks"), .init("--ca-file", value: true, completion: .file),
        .init("--https-only"),
        .init("--disable-after", value: true), .init("--probe-every", value: true),
        .init("--metrics-file", value: true, completion: .file),
        .init("--log-level", value: true, completion: .words(["error", "warn", "info", "debug"])),
        .init("--kick-file", value: true, completion: .file), .init("--linger", value: true),
        .init("--lock-fd", value: true, hidden: true),
        .init("--generate-completion-script", value: true, completion: .words(["bash"]), hidden: true),
        .init("--dry-run"), .init("-v", "--verbose"), .init("--json"),
        .init("--version"), .init("-h", "--help"),
    ])

    /// The command line as a `Deliverer`, or `nil` after printing help or the version.
    static func configure(_ arguments: [String]) throws -> (Deliverer, Logger, dryRun: Bool, json: Bool)? {
        let parsed = try parser.parse(arguments)
        if parsed.has("--help") {
            try Output.standard(usage)
            return nil
        }
        if parsed.has("--version") {
            try Output.standard(KeysatVersion.string + "\n")
            return nil
        }
        if let shell = parsed.value("--generate-completion-script") {
            guard shell == "bash" else {
                throw KeysatError(.usage, "completion scripts are made for bash only")
            }
            try Output.standard(parser.bashCompletion(program: name))
            return nil
        }
        if let extra = parsed.positionals.first {
            throw KeysatError(.usage, "unexpected argument '\(extra)'")
        }
        for database in parsed.all("--db") { try Backends.checkCommandLine(database: database) }
        var deliverer = Deliverer(
            databasePath: Environment.process.databasePath(option: parsed.value("--db")))
        deliverer.lockPath = parsed.value("--lock-file")
        deliverer.metricsPath =
            parsed.value("--metrics-file")
            ?? Environment.process["KEYSAT_METRICS_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        deliverer.kickPath = parsed.value("--kick-file")
        deliverer.lingerSeconds = try parsed.seconds("--linger", zero: "no lingering") ?? 0
        // Not in the help: how keysat-enqueue --kick=spawn hands over the lock it took.
        deliverer.inheritedLockFD = try parsed.integer("--lock-fd", in: 3...1024, what: "a descriptor number")
            .map(Int32.init)
        if let value = try parsed.integer(
            "--busy-timeout", in: 0...Int(Int32.max), what: "a number of milliseconds")
        {
            deliverer.busyTimeoutMS = value
        }
        deliverer.waitSeconds = try parsed.seconds("--wait", zero: "do not wait") ?? 0
        deliverer.options = try deliveryOptions(parsed)
        var level = Logger.Level.warn
        if let text = parsed.value("--log-level") {
            guard let chosen = Logger.Level(rawValue: text) else {
                throw KeysatError(.usage, "'--log-level' must be error, warn, info or debug")
            }
            level = chosen
        }
        if parsed.has("--verbose") { level = max(level, .info) }
        return (
            deliverer, Logger(program: name, threshold: level), parsed.has("--dry-run"), parsed.has("--json")
        )
    }

    /// The options of the run itself: limits, time limits, the network policy, TLS.
    static func deliveryOptions(_ parsed: OptionParser.Parsed) throws -> DeliveryOptions {
        var options = DeliveryOptions()
        options.concurrency =
            try parsed.integer("--concurrency", in: 1...1024, what: "from 1 to 1024") ?? options.concurrency
        options.perEndpoint =
            try parsed.integer("--per-endpoint", in: 1...1024, what: "a positive number")
            ?? options.perEndpoint
        options.breaker =
            try parsed.integer("--breaker", in: 1...1_000_000, what: "a positive number") ?? options.breaker
        options.limit = try parsed.integer("--limit", in: 1...Int.max, what: "a positive number")
        options.maxRuntimeSeconds = try parsed.seconds("--max-runtime")
        options.timeoutSeconds = try parsed.seconds("--timeout") ?? options.timeoutSeconds
        options.connectTimeoutSeconds =
            try parsed.seconds("--connect-timeout") ?? options.connectTimeoutSeconds
        if let seconds = try parsed.seconds("--disable-after", minimum: 1, zero: "never") {
            options.disableAfterSeconds = Int64(seconds.rounded(.up))
        }
        if let seconds = try parsed.seconds("--probe-every", minimum: 1, zero: "never") {
            options.probeEverySeconds = Int64(seconds.rounded(.up))
        }
        for network in parsed.all("--allow-network") where NetworkPolicy.Network(network) == nil {
            throw KeysatError(
                .usage,
                "'--allow-network' must be a network such as 10.0.0.0/8 or an address, not '\(network)'")
        }
        options.policy = try NetworkPolicy.make(
            allow: parsed.all("--allow-network"), allowPrivate: parsed.has("--allow-private-networks"),
            environment: .process)
        options.httpsOnly = parsed.has("--https-only")
        if let caFile = parsed.value("--ca-file") {
            guard try InputFile.read(caFile, limit: 16 << 20, what: "CA file") != nil else {
                throw KeysatError(.data, "CA file \(caFile) is larger than 16 MiB")
            }
            options.caFile = caFile
        }
        return options
    }

    /// Runs keysat-deliver with this process's arguments; exits with its status.
    public static func main() -> Never {
        do {
            // A run reads every endpoint's secret.
            try SecretHolding.begin()
            guard
                let (deliverer, logger, dryRun, json) = try configure(
                    Array(CommandLine.arguments.dropFirst()))
            else {
                exit(0)
            }
            switch try deliverer.execute(dryRun: dryRun, logger: logger) {
            case .lockHeld:
                if json { try Output.standard(#"{"skipped_run":true}"# + "\n") }
            case .wouldSend(let deliveries, let refused) where json:
                // The same key names as `keysat-webhooks deliveries list --json`.
                try Output.standard(
                    JSONText.array(
                        deliveries.map {
                            JSONText.object([
                                ("id", JSONText.string($0.id)),
                                ("endpoint_id", JSONText.string($0.endpointID)),
                                ("event_type", JSONText.string($0.eventType)),
                                ("attempt", String($0.attemptCount + 1)),
                                ("url", JSONText.string($0.url)),
                                ("refused", JSONText.string(refused[$0.endpointID])),
                            ])
                        }) + "\n")
            case .wouldSend(let deliveries, let refused):
                // One line per delivery, every value from the database escaped (a newline in one
                // must not make a line of its own).
                try Output.standard(
                    deliveries.map {
                        let fields = [
                            $0.id, $0.endpointID, $0.eventType, String($0.attemptCount + 1), $0.url ?? "-",
                        ]
                        let mark = refused[$0.endpointID].map { " refused:" + TerminalText.escape($0) } ?? ""
                        return fields.map { TerminalText.escape($0) }.joined(separator: " ") + mark + "\n"
                    }
                    .joined())
            case .ran(let summary):
                if json { try Output.standard(summary.json + "\n") }
            }
            exit(0)
        } catch {
            Output.fail(name, KeysatError.from(error))
        }
    }
}
