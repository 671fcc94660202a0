public import KeysatStore

/// keysat-deliver's whole job: lock, open, run (or list), unlock.
public struct Deliverer {
    public var databasePath: String
    public var lockPath: String?
    public var busyTimeoutMS = 5000
    public var waitSeconds = 0.0
    public var options = DeliveryOptions()

    public init(databasePath: String) { self.databasePath = databasePath }

    /// What a call did.
    public enum Result {
        /// Another run holds the lock; nothing was done.
        case lockHeld(lockPath: String)
        /// The run's counts.
        case ran(RunSummary)
        /// `--dry-run`: what would be attempted.
        case wouldSend([DueDelivery])
    }

    /// Takes the lock (waiting up to `waitSeconds`), then sends everything due, or with
    /// `dryRun` lists it.
    ///
    /// - Throws: `KeysatError`; `temporary` (75) when `waitSeconds > 0` and the lock stayed held.
    public func execute(
        dryRun: Bool, clock: any Clock = SystemClock(), warn: @escaping (String) -> Void
    ) throws -> Result {
        // A missing database is reported before a lock file is created beside it.
        let store = try WebhookStore(path: databasePath, busyTimeoutMS: busyTimeoutMS, clock: clock)
        let lockFile = lockPath ?? DeliverLock.defaultPath(database: databasePath)
        guard let lock = try DeliverLock.acquire(path: lockFile, waitSeconds: waitSeconds) else {
            if waitSeconds > 0 {
                throw KeysatError(
                    .temporary,
                    "another keysat-deliver run still holds \(lockFile) after waiting \(waitSeconds)s")
            }
            return .lockHeld(lockPath: lockFile)
        }
        defer { withExtendedLifetime(lock) {} }
        let t0 = clock.now()
        let run = DeliveryRun(queue: store, options: options, clock: clock, warn: warn)
        if dryRun { return .wouldSend(try run.due(at: t0)) }
        return .ran(try run.run(at: t0))
    }
}
