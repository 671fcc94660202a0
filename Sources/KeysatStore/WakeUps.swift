public import KeysatCore

#if canImport(Glibc)
    import Glibc
#endif

/// How a run learns that events were queued while it sent a round or lingered: the kick file
/// on SQLite (`Kick`), `NOTIFY keysat_webhooks` on PostgreSQL. Made by the backend
/// (`BackendSetUp.wakeUps(kickFile:)`), so the engine names neither.
///
/// A run calls `reset()` before each round's T0, then after the round `woken(waitingUpTo:)`
/// until it says yes (go round again) or the run's linger ends. A wake-up that arrives after
/// `reset()` is never lost: it shows in the next `woken`.
public protocol WakeUps: AnyObject {
    /// Forgets the wake-ups that arrived so far (the round about to start will see their events).
    func reset() throws
    /// Whether a wake-up arrived since `reset()`, waiting up to `milliseconds` for one (0: look
    /// without waiting).
    func woken(waitingUpTo milliseconds: Int) throws -> Bool
}

/// SQLite's wake-ups: the kick file that `keysat-enqueue --kick` grows by one byte (`Kick`).
public final class KickFileWakeUps: WakeUps {
    public let path: String
    private let sharing: OwnedFile.Sharing
    private var before: Kick.Stamp?

    public init(path: String, sharing: OwnedFile.Sharing) {
        self.path = path
        self.sharing = sharing
    }

    public func reset() {
        // Emptied and read before T0: a kick written after this point belongs to an event
        // that may have missed T0, and shows as a change.
        Kick.reset(path, sharing: sharing)
        before = Kick.stamp(path)
    }

    public func woken(waitingUpTo milliseconds: Int) -> Bool {
        if Kick.stamp(path) != before { return true }
        guard milliseconds > 0 else { return false }
        // A file has nothing to wait on: look again after the wait.
        usleep(UInt32(min(milliseconds, 1000)) * 1000)
        return Kick.stamp(path) != before
    }
}

extension WebhookStore {
    public func wakeUps(kickFile: String?) -> any WakeUps {
        KickFileWakeUps(
            path: kickFile ?? Kick.defaultPath(database: location),
            sharing: OwnedFile.Sharing(database: location))
    }
}
