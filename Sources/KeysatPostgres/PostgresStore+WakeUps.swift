public import KeysatStore

extension PostgresStore {
    /// The channel keysat-enqueue notifies after each commit that queued deliveries, and that
    /// a run listens on (docs/POSTGRES.md, "wake-ups").
    public static let wakeUpChannel = "keysat_webhooks"

    /// What PostgreSQL cannot do that SQLite can: it has no files beside the database. Runs on
    /// several hosts share the queue through leases, not a lock file; wake-ups are NOTIFY, not
    /// a kick file; schema steps are applied whole, so there is nothing to repair.
    public static let capabilities = BackendCapabilities(
        sharedFiles: false, lockFile: false, schemaRepair: false, kickFile: false)

    /// Listens on `wakeUpChannel` on this session: a run's own connection, whose notifications
    /// libpq keeps while the run's queries go on, and which the run reads between rounds.
    ///
    /// - Parameter kickFile: must be `nil` (the commands refuse `--kick-file` on PostgreSQL).
    public func wakeUps(kickFile: String?) throws -> any WakeUps {
        try PostgresWakeUps(connection: connection)
    }
}

/// PostgreSQL's wake-ups: `LISTEN keysat_webhooks`, then the notifications that arrived.
final class PostgresWakeUps: WakeUps {
    private let connection: PostgresConnection

    init(connection: PostgresConnection) throws {
        self.connection = connection
        try connection.listen(PostgresStore.wakeUpChannel)
    }

    func reset() throws {
        _ = try connection.notifications(waitingUpTo: 0)
    }

    func woken(waitingUpTo milliseconds: Int) throws -> Bool {
        try !connection.notifications(waitingUpTo: milliseconds).isEmpty
    }
}
