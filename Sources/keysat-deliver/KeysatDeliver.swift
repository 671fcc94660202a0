public import ArgumentParser
import KeysatDelivery
public import KeysatStore

extension Logger.Level: ExpressibleByArgument {}

/// keysat-deliver: sends every due webhook delivery once, records the outcomes, exits.
@main
struct KeysatDeliver: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keysat-deliver",
        abstract: "Send every due webhook delivery, record each outcome, and exit.",
        discussion: """
            Meant for cron or a systemd timer. Runs never overlap: a run that finds the lock held
            exits 0 at once. Silent when all went well; prints one warning per delivery given up on.
            See keysat-deliver(1).
            """,
        version: KeysatVersion.string)

    @Option(
        name: .customLong("db"),
        help: "The database file (default $KEYSAT_DB, else /var/lib/keysat/keysat.db).")
    var database: String?

    @Option(name: .customLong("busy-timeout"), help: "Wait up to MS milliseconds for a locked database.")
    var busyTimeoutMS = 5000

    @Option(
        help: ArgumentHelp(
            "The lock file (default: the database path plus .deliver.lock).", valueName: "path"))
    var lockFile: String?

    @Option(
        help: ArgumentHelp(
            "Wait up to this long for a running run to finish, then exit 75.", valueName: "duration"))
    var wait: String?

    @Option(help: "Requests in flight at once.")
    var concurrency = 16

    @Option(help: ArgumentHelp("Requests in flight to one endpoint at once.", valueName: "n"))
    var perEndpoint = 4

    @Option(
        help: ArgumentHelp(
            "Stop trying an endpoint for this run after K transport failures in a row.", valueName: "k"))
    var breaker = 3

    @Option(
        help: ArgumentHelp(
            "Stop starting attempts after this long; in-flight ones finish.", valueName: "duration"))
    var maxRuntime: String?

    @Option(help: ArgumentHelp("Time limit of one attempt (seconds, or 30s, 2m).", valueName: "duration"))
    var timeout = "10"

    @Option(help: ArgumentHelp("Time limit for connecting.", valueName: "duration"))
    var connectTimeout = "5"

    @Option(help: "Attempt at most N deliveries in this run.")
    var limit: Int?

    @Option(
        help: ArgumentHelp(
            "Allow connecting to this network although the policy refuses it (repeatable).", valueName: "cidr"
        ))
    var allowNetwork: [String] = []

    @Flag(help: "Allow loopback, RFC 1918, unique local and carrier-grade NAT addresses (not link-local).")
    var allowPrivateNetworks = false

    @Option(
        help: ArgumentHelp("Trust this CA bundle (PEM) for TLS instead of the system's.", valueName: "path"))
    var caFile: String?

    @Flag(help: "Refuse plain http endpoints.")
    var httpsOnly = false

    @Option(
        help: ArgumentHelp(
            "Disable an endpoint whose attempts have all failed for longer than this (0: never).",
            valueName: "duration"))
    var disableAfter = "5d"

    @Flag(help: "List what is due and would be sent; send nothing, change nothing.")
    var dryRun = false

    @Option(
        help: ArgumentHelp("After the run, write Prometheus metrics to PATH (atomically).", valueName: "path")
    )
    var metricsFile: String?

    @Option(help: "error, warn, info or debug (one line per attempt).")
    var logLevel: Logger.Level = .warn

    @Flag(
        name: .shortAndLong,
        help: "Print a one-line summary (and a held lock) on standard error: --log-level info.")
    var verbose = false

    @Flag(help: "Print the run's counts as a JSON object on standard output.")
    var json = false

    func validate() throws {
        if busyTimeoutMS < 0 { throw ValidationError("'--busy-timeout' must be a number of milliseconds") }
        if concurrency < 1 || concurrency > 1024 {
            throw ValidationError("'--concurrency' must be from 1 to 1024")
        }
        if let limit, limit < 1 { throw ValidationError("'--limit' must be a positive number") }
        if perEndpoint < 1 { throw ValidationError("'--per-endpoint' must be a positive number") }
        if breaker < 1 { throw ValidationError("'--breaker' must be a positive number") }
        if let maxRuntime, (DurationText.fractionalSeconds(maxRuntime) ?? 0) <= 0 {
            throw ValidationError("'--max-runtime' must be a positive duration such as 25, 25s or 5m")
        }
        for network in allowNetwork where NetworkPolicy.Network(network) == nil {
            throw ValidationError(
                "'--allow-network' must be a network such as 10.0.0.0/8 or an address, not '\(network)'")
        }
        if DurationText.seconds(disableAfter) == nil {
            throw ValidationError("'--disable-after' must be a duration such as 5d, 12h or 0")
        }
        if let wait, DurationText.fractionalSeconds(wait) == nil {
            throw ValidationError("'--wait' must be a duration such as 30, 30s or 2m")
        }
        for (name, value) in [("--timeout", timeout), ("--connect-timeout", connectTimeout)] {
            guard let seconds = DurationText.fractionalSeconds(value), seconds > 0, seconds <= 86_400 else {
                throw ValidationError("'\(name)' must be a positive duration such as 10, 0.5 or 2m")
            }
        }
    }

    func run() throws {
        var deliverer = Deliverer(databasePath: Environment.process.databasePath(option: database))
        deliverer.lockPath = lockFile
        deliverer.busyTimeoutMS = busyTimeoutMS
        deliverer.waitSeconds = wait.flatMap(DurationText.fractionalSeconds) ?? 0
        deliverer.options.concurrency = concurrency
        deliverer.options.timeoutSeconds = DurationText.fractionalSeconds(timeout) ?? 10
        deliverer.options.connectTimeoutSeconds = DurationText.fractionalSeconds(connectTimeout) ?? 5
        deliverer.options.limit = limit
        deliverer.options.perEndpoint = perEndpoint
        deliverer.options.breaker = breaker
        deliverer.options.maxRuntimeSeconds = maxRuntime.flatMap(DurationText.fractionalSeconds)
        deliverer.metricsPath = metricsFile
        deliverer.options.policy = try NetworkPolicy.make(
            allow: allowNetwork, allowPrivate: allowPrivateNetworks, environment: .process)
        deliverer.options.httpsOnly = httpsOnly
        deliverer.options.disableAfterSeconds = DurationText.seconds(disableAfter) ?? 0
        if let caFile {
            guard (try InputFile.read(caFile, limit: 16 << 20, what: "CA file")) != nil else {
                throw KeysatError(.data, "CA file \(caFile) is larger than 16 MiB")
            }
            deliverer.options.caFile = caFile
        }
        let logger = Logger(
            program: Self.configuration.commandName!, threshold: verbose ? max(logLevel, .info) : logLevel)
        let result = try deliverer.execute(dryRun: dryRun, logger: logger)
        switch result {
        case .lockHeld:
            if json { try Output.standard(#"{"skipped_run":true}"# + "\n") }
        case .wouldSend(let deliveries):
            try Output.standard(
                deliveries.map {
                    "\($0.id) \($0.endpointID) \($0.eventType) \($0.attemptCount + 1) \($0.url ?? "-")\n"
                }.joined())
        case .ran(let summary):
            if json { try Output.standard(summary.json + "\n") }
        }
    }

    /// Maps every error to one line and a sysexits code, here only.
    static func main() {
        let name = configuration.commandName!
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as KeysatError {
            Output.fail(name, error)
        } catch {
            if exitCode(for: error) == .success || error is ExitCode { exit(withError: error) }
            Output.error("\(name): error: \(message(for: error))\n(see '\(name) --help')\n")
            exit(withError: ExitCode(64))
        }
    }
}
