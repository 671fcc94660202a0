public import KeysatCore
public import KeysatStore
import KeysatBackends

#if canImport(Glibc)
    import Glibc
#endif

/// keysat-deliver's whole job: lock, open, run (or list), write metrics, unlock.
///
/// On PostgreSQL there is no lock: several runs, on one host or several, share the queue, each
/// claiming a delivery with a lease just before sending it (docs/POSTGRES.md).
public struct Deliverer {
    public var databasePath: String
    /// The lock file (default: the database path plus `.deliver.lock`); refused on PostgreSQL.
    public var lockPath: String?
    public var busyTimeoutMS = 5000
    public var waitSeconds = 0.0
    public var metricsPath: String?
    /// The kick file (default: the database path plus `.kick`); see `Kick`. Refused on
    /// PostgreSQL, where a run listens for NOTIFY instead (`WakeUps`).
    public var kickPath: String?
    /// After a round with no wake-up, wait this long for one before exiting (holding the lock, so
    /// a burst of kicked events is served by this run rather than by a new run per event).
    public var lingerSeconds = 0.0
    /// A descriptor through which the lock is already held (see `Kick.spawnDeliver`).
    public var inheritedLockFD: Int32?
    public var options = DeliveryOptions()

    public init(databasePath: String) { self.databasePath = databasePath }

    /// What a call did.
    public enum Result {
        /// Another run holds the lock; nothing was done.
        case lockHeld(lockPath: String)
        /// The run's counts.
        case ran(RunSummary)
        /// `--dry-run`: what would be attempted, and the endpoints whose destination the network
        /// policy would refuse (endpoint id → the refused address, or `--https-only`).
        case wouldSend([DueDelivery], refused: [String: String])
    }

    /// Takes the lock (waiting up to `waitSeconds`), then sends everything due, or with
    /// `dryRun` lists it.
    ///
    /// - Throws: `KeysatError`; `temporary` (75) when `waitSeconds > 0` and the lock stayed held.
    public func execute(dryRun: Bool, clock: any TimeSource = SystemClock(), logger: Logger) throws -> Result
    {
        // Refused before anything is opened: options the backend cannot honour.
        if lockPath != nil { try Backends.refuse(.lockFile, at: databasePath) }
        if kickPath != nil { try Backends.refuse(.kickFile, at: databasePath) }
        // A missing database is reported before a lock file is created beside it.
        // --dry-run only reads: opened read-only, so that a monitoring user can list what is due.
        let store = try Backends.open(databasePath, readOnly: dryRun, busyTimeoutMS: busyTimeoutMS, clock: clock)
        if let warning = store.permissionWarning() { logger.log(.warn, warning) }
        if store.isReadOnly && !dryRun {
            throw KeysatError(
                .permission,
                "database \(store.location) is read-only for this user, and a run must record its outcomes (run keysat-deliver as the database's owner)"
            )
        }
        // A listing changes nothing and needs no lock: it runs beside a run, as a read-only user.
        if dryRun { return try listDue(store: store, clock: clock, logger: logger) }
        var lock: DeliverLock?
        if store.capabilities.lockFile {
            let lockFile = lockPath ?? DeliverLock.defaultPath(database: databasePath)
            let inherited = inheritedLockFD.flatMap { DeliverLock.adopt(fd: $0, path: lockFile) }
            lock =
                try inherited
                ?? DeliverLock.acquire(
                    path: lockFile, waitSeconds: waitSeconds,
                    sharing: OwnedFile.Sharing(database: databasePath))
            guard lock != nil else {
                if waitSeconds > 0 {
                    throw KeysatError(
                        .temporary,
                        "another keysat-deliver run still holds \(lockFile) after waiting \(waitSeconds)s")
                }
                logger.log(.info, "another run holds the lock; nothing to do", ["lock_file": lockFile])
                return .lockHeld(lockPath: lockFile)
            }
        }
        defer { withExtendedLifetime(lock) {} }
        let signals = StopSignal()
        let start = clock.now()
        do {
            let summary = try rounds(store: store, clock: clock, logger: logger) {
                signals.requested
            }
            logSummary(summary, logger: logger)
            if summary.attempted > 0 {
                // Keeps the WAL short even where another program (Keysat) holds the database open
                // for ever, and with it any page image an erased secret was left in.
                _ = try? store.checkpointErasing()
            }
            writeMetrics(store: store, started: start, clock: clock, summary: summary, logger: logger)
            return .ran(summary)
        } catch {
            // The failed run is still recorded, so an alert on the last success can fire.
            writeMetrics(store: store, started: start, clock: clock, summary: nil, logger: logger)
            throw error
        }
    }

    private func logSummary(_ summary: RunSummary, logger: Logger) {
        logger.log(
            .info, "run finished",
            [
                "attempted": String(summary.attempted), "delivered": String(summary.delivered),
                "retry_scheduled": String(summary.retryScheduled),
                "dead_lettered": String(summary.deadLettered),
                "skipped": String(summary.skipped), "endpoints_disabled": String(summary.endpointsDisabled),
                "endpoints_recovered": String(summary.endpointsRecovered),
                "rounds": String(summary.rounds), "stopped_by": summary.stoppedBy?.rawValue ?? "-",
                "elapsed_ms": String(summary.elapsedMS),
            ])
        if let reason = summary.stoppedBy, reason != .limit {
            logger.log(
                .info, "stopped early; the deliveries not attempted stay due", ["reason": reason.rawValue])
        }
    }

    /// `--dry-run`: what is due, with the endpoints whose destination the policy would refuse
    /// (judged once per endpoint, on what its host resolves to now).
    private func listDue(store: any WebhookBackend, clock: any TimeSource, logger: Logger) throws -> Result {
        let due = try DeliveryRun(store: store, options: options, clock: clock, logger: logger).due(
            at: clock.now())
        var refused: [String: String] = [:]
        var judged: Set<String> = []
        for delivery in due where judged.insert(delivery.endpointID).inserted {
            guard let url = delivery.url,
                let why = options.policy.refusal(
                    of: url, httpsOnly: options.httpsOnly, timeoutSeconds: options.timeoutSeconds)
            else { continue }
            refused[delivery.endpointID] = why
            logger.refusedDestination(endpointID: delivery.endpointID, url: url, address: why)
        }
        return .wouldSend(due, refused: refused)
    }

    /// Runs rounds until one ends without a wake-up during it (an event was enqueued and kicked
    /// or notified meanwhile) or while lingering, within the time budget and the limit.
    private func rounds(
        store: any WebhookBackend, clock: any TimeSource, logger: Logger, stop: @escaping () -> Bool
    ) throws -> RunSummary {
        // Budgets on the monotonic clock: a wall clock stepped back must not stretch them.
        let start = clock.elapsed()
        // Before the first T0, so that no event queued during the first round is missed.
        let wakeUps = try store.wakeUps(kickFile: kickPath)
        // Outcomes are committed on a second connection and thread, while the run sends.
        let recorder = BackgroundRecorder(store) {
            // SQLite's own page cache (2 MiB) on both connections, by measurement (make bench
            // SCALE=1): a million due rows go out at the rate of 20,000 with it, and 4 MiB each
            // only made peak RSS grow with the database (docs/BENCHMARKS.md, fourth session).
            try Backends.open(databasePath, busyTimeoutMS: busyTimeoutMS, clock: clock)
        }
        defer { try? recorder.close() }
        // Claims are answered on a third connection and thread where each is a round trip to a
        // server (PostgreSQL), while the run drives its transfers; SQLite's cost nothing.
        let claims =
            store.claimBatch > 1
            ? BackgroundClaims { try Backends.open(databasePath, busyTimeoutMS: busyTimeoutMS, clock: clock) } : nil
        defer { claims?.close() }
        var total = RunSummary()
        var roundOptions = options
        while true {
            try wakeUps.reset()
            let t0 = clock.now()
            if let budget = options.maxRuntimeSeconds {
                roundOptions.maxRuntimeSeconds = budget - Double(clock.elapsed() - start) / 1e6
            }
            if let limit = options.limit { roundOptions.limit = limit - total.attempted }
            let run = DeliveryRun(
                store: recorder, options: roundOptions, clock: clock, logger: logger, stop: stop, claims: claims)
            total.merge(try run.run(at: t0))
            total.rounds += 1
            total.elapsedMS = Int((clock.elapsed() - start) / 1000)
            guard total.stoppedBy == nil, total.rounds < 100_000, (roundOptions.limit ?? 1) > 0 else {
                return total
            }
            // Woken during the round: go round again at once. Otherwise linger, if asked to, in
            // steps of 10 ms so that a stop signal is seen at once.
            let budgetEnd = options.maxRuntimeSeconds.map { start + Int64($0 * 1_000_000) }
            let lingerEnd = clock.elapsed() + Int64(lingerSeconds * 1_000_000)
            var waitMS = 0
            while try !wakeUps.woken(waitingUpTo: waitMS) {
                let now = clock.elapsed()
                let end = min(lingerEnd, budgetEnd ?? Int64.max)
                if now >= end || stop() { return total }
                waitMS = Int(min((end - now + 999) / 1000, 10))
            }
            if let budgetEnd, clock.elapsed() >= budgetEnd { return total }
            logger.log(.debug, "woken; going round again", ["round": String(total.rounds + 1)])
        }
    }

    /// Writes the metrics file. Failing to is a warning, not a failed run (the deliveries are
    /// recorded); it is counted in the database, so the next metrics written say so too.
    private func writeMetrics(
        store: any WebhookBackend, started: Timestamp, clock: any TimeSource, summary: RunSummary?, logger: Logger
    ) {
        guard let metricsPath else { return }
        var snapshot = MetricsFile.Snapshot(runStarted: started, runFinished: clock.now(), summary: summary)
        snapshot.queue = try? store.queueCounts()
        snapshot.endpoints = (try? store.endpointStats()) ?? []
        snapshot.failures = (try? store.metricsFailures()) ?? snapshot.failures
        do {
            try MetricsFile(path: metricsPath).write(snapshot)
        } catch {
            logger.log(
                .warn, "cannot write the metrics file; the run's deliveries are recorded",
                ["metrics_file": metricsPath, "error": KeysatError.from(error).message])
            try? store.recordMetricsFailure(at: clock.now())
        }
    }
}
