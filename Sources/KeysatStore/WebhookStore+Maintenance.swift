public import KeysatCore

/// Purging old deliveries and counting the queue.
extension WebhookStore {
    /// Which finished deliveries `purge` deletes.
    public enum PurgeScope: String, Sendable, CaseIterable {
        case delivered
        case dead
        case allFinished = "all-finished"

        /// Delivered ones age from `delivered_at`, dead ones from `created_at`: the SQL condition
        /// on table `d`, `cutoff` the expression of the cutoff (SQLite binds `:cutoff`;
        /// PostgreSQL casts a parameter to `timestamptz`). The one definition of each scope.
        public func condition(cutoff: String = ":cutoff") -> String {
            let delivered = "(d.delivered_at IS NOT NULL AND d.delivered_at < \(cutoff))"
            let dead = "(\(DeliveryRecord.State.dead.condition()) AND d.created_at < \(cutoff))"
            switch self {
            case .delivered: return delivered
            case .dead: return dead
            case .allFinished: return "(\(delivered) OR \(dead))"
            }
        }
    }

    /// Deletes finished deliveries older than `cutoff`, with their attempt history, in
    /// transactions of at most `batch` rows so that writers are never blocked for long.
    /// Pending deliveries are never deleted.
    ///
    /// Rows are visited in `(created_at, id)` order, from where the last batch ended (keyset
    /// paging, not a rescan): a finished delivery older than the cutoff was created before it,
    /// so the work is proportional to the deliveries created before the cutoff, and nothing at
    /// all when there are none.
    ///
    /// - Returns: deliveries and attempts deleted (or, with `dryRun`, that would be).
    public func purge(scope: PurgeScope, before cutoff: Timestamp, dryRun: Bool, batch: Int = 1000) throws
        -> (deliveries: Int, attempts: Int)
    {
        let from = "FROM webhook_deliveries AS d WHERE d.created_at < :cutoff AND \(scope.condition())"
        let chosen = "SELECT d.id " + from
        let values: [(String, SQLValue)] = [(":cutoff", .text(cutoff.rfc3339))]
        if dryRun {
            let deliveries =
                try database.prepare("SELECT count(*) FROM (\(chosen))").rows(named: values) {
                    $0.integer(0) ?? 0
                }.first ?? 0
            let attempts =
                try database.prepare(
                    "SELECT count(*) FROM webhook_deliveries AS d JOIN webhook_delivery_attempts AS a ON "
                        + AttemptHistory.of("d", "a") + " WHERE d.rowid IN (SELECT d.rowid \(from))"
                ).rows(named: values) { $0.integer(0) ?? 0 }.first ?? 0
            return (deliveries, attempts)
        }
        var total = (deliveries: 0, attempts: 0)
        // The last row of the page before, its values as stored and typed (another program's
        // id may be a blob, or text with a NUL: as a String it would make the cursor stand
        // still, and purge loop for ever).
        var cursor: PurgeCursor?
        try deletingInBulk {
            while true {
                let (page, deleted, attempts) = try database.writeTransaction {
                    try purgeBatch(from: from, scope: scope, values: values, after: cursor, batch: batch)
                }
                total.deliveries += deleted
                total.attempts += attempts
                guard page.count == batch, let last = page.last, last.rowID != cursor?.rowID else { return }
                cursor = last
            }
        }
        if total.deliveries + total.attempts > 0 { try checkpointWithoutWaiting() }
        return total
    }

    /// Runs `body` with the connection set for deleting many rows, and sets it back after.
    ///
    /// - `temp_store=MEMORY`: each DELETE (a trigger keeps the totals) keeps a statement journal
    ///   of the pages it changes, which SQLite spills to an unlinked file in /var/tmp past
    ///   64 KiB: ten writes per row deleted (strace: 10,196 for 1,000 rows), and copies of the
    ///   deleted payloads left in that file system's free blocks. In memory it is a few pages
    ///   at a time (one row's statement), freed at once.
    /// - A 16 MiB page cache: a batch of 1,000 rows changes about 1,100 pages (one leaf of the
    ///   random-id index per row), more than SQLite's 2 MiB hold, so pages spilled to the WAL
    ///   mid-transaction were written there again at commit (3,639 WAL writes for 1,000 rows,
    ///   2,453 with the larger cache). Only for the purge: the command ends after it.
    private func deletingInBulk(_ body: () throws -> Void) throws {
        let cache = try database.prepare("PRAGMA cache_size").first { $0.integer(0) } ?? nil
        try database.execute("PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16384")
        defer { try? database.execute("PRAGMA temp_store=DEFAULT; PRAGMA cache_size=\(cache ?? -2000)") }
        try body()
    }

    /// After a purge: the deleted rows' bytes, zeroed in the pages they left (`secure_delete`,
    /// freed pages included), copied over the old pages of the database file and the WAL
    /// emptied, also while other programs hold the database open (their connections' close
    /// would not checkpoint for us). Without waiting: a checkpoint that truncates the WAL holds
    /// back writers while it waits for readers, and purge never holds them back for long. A
    /// reader in the middle of a transaction leaves the rest to the next checkpoint (the end of
    /// a keysat-deliver run that sent anything, or the last connection's close).
    private func checkpointWithoutWaiting() throws {
        let timeout = try database.prepare("PRAGMA busy_timeout").first { $0.integer(0) } ?? nil
        try database.execute("PRAGMA busy_timeout=0")
        defer { try? database.execute("PRAGMA busy_timeout=\(timeout ?? 5000)") }
        try checkpointErasing()
    }

    /// A row chosen by `purge`: where the next page starts after it, and its history number.
    private struct PurgeCursor {
        var createdAt: SQLValue
        var id: SQLValue
        var rowID: Int64
        var history: Int?
    }

    /// One batch of `purge`, in the caller's transaction: the page after `cursor`, and what of it
    /// was deleted (deliveries, attempts).
    private func purgeBatch(
        from: String, scope: PurgeScope, values: [(String, SQLValue)], after cursor: PurgeCursor?, batch: Int
    ) throws -> ([PurgeCursor], Int, Int) {
        let page = try database.prepare(
            "SELECT d.created_at, d.id, d.rowid, d.keysat_webhooks_history " + from
                + (cursor == nil ? "" : " AND (d.created_at, d.id) > (:after, :afterID)")
                + " ORDER BY d.created_at, d.id LIMIT :batch"
        ).rows(
            named: values + [
                (":after", cursor?.createdAt ?? .null), (":afterID", cursor?.id ?? .null),
                (":batch", .integer(Int64(batch))),
            ]
        ) { PurgeCursor(createdAt: $0.value(0), id: $0.value(1), rowID: Int64($0.integer(2) ?? 0), history: $0.integer(3)) }
        let history = try database.prepare(
            "DELETE FROM webhook_delivery_attempts WHERE "
                + AttemptHistory.of(id: "?1", number: "?2", "webhook_delivery_attempts"))
        // By rowid, while the row is still what the page chose (old and finished): no comparison
        // of ids, which another program may have written as anything (a NULL id was counted as
        // deleted by every purge and never was).
        let row = try database.prepare(
            "DELETE FROM webhook_deliveries AS d WHERE d.rowid = :rowid AND d.created_at < :cutoff AND \(scope.condition())"
        )
        var attempts = 0
        var deleted = 0
        for found in page {
            if case .bytes = found.id {  // text: attempts are recorded only for text ids
                try history.run([found.id, .optional(found.history)])
                attempts += database.changes
            }
            try row.run(named: values + [(":rowid", .integer(found.rowID))])
            deleted += database.changes
        }
        return (page, deleted, attempts)
    }

    // MARK: - Statistics

    /// Counts of the whole queue.
    public struct QueueCounts: Sendable, Equatable {
        public var pending = 0
        public var due = 0
        public var delivered = 0
        public var dead = 0
        /// Seconds since the oldest due delivery became due (0 when none is due).
        public var oldestDueAgeSeconds = 0.0

        public init(
            pending: Int = 0, due: Int = 0, delivered: Int = 0, dead: Int = 0, oldestDueAgeSeconds: Double = 0
        ) {
            self.pending = pending
            self.due = due
            self.delivered = delivered
            self.dead = dead
            self.oldestDueAgeSeconds = oldestDueAgeSeconds
        }
    }

    /// Per-endpoint health.
    public struct EndpointStats: Sendable {
        public var endpoint: Endpoint
        public var pending = 0
        public var dead = 0
        public var delivered24h = 0
        /// Successful attempts / attempts in the last 24 hours; `nil` without attempts.
        public var successRate24h: Double?
        public var lastSuccess: String?
        public var lastFailure: String?
        /// Failed attempts since the last successful one.
        public var failureStreak = 0

        public init(endpoint: Endpoint) { self.endpoint = endpoint }
    }

    /// The whole queue's counts, from the totals kept by triggers and the partial indexes: the
    /// work is proportional to the deliveries due and stopped (dead, held), never to the history
    /// (`StatsQueryPlanTests` checks the plans).
    public func queueCounts() throws -> QueueCounts {
        let now = clock.now()
        let values: [(String, SQLValue)] = [(":now", .text(now.rfc3339))]
        let row = try database.prepare(
            """
            SELECT
              (SELECT coalesce(sum(deliveries), 0) FROM keysat_webhooks_totals),
              (SELECT coalesce(sum(delivered), 0) FROM keysat_webhooks_totals),
              (SELECT count(*) FROM webhook_deliveries INDEXED BY idx_webhook_deliveries_pending
                 WHERE \(DeliveryRecord.State.due.condition(""))),
              (SELECT count(*) FROM webhook_deliveries INDEXED BY idx_keysat_webhooks_deliveries_stopped
                 WHERE delivered_at IS NULL AND next_attempt_at IS NULL),
              (SELECT count(*) FROM webhook_deliveries INDEXED BY idx_keysat_webhooks_deliveries_stopped
                 WHERE \(DeliveryRecord.State.dead.condition(""))),
              (SELECT min(next_attempt_at) FROM webhook_deliveries INDEXED BY idx_webhook_deliveries_pending
                 WHERE \(DeliveryRecord.State.due.condition("")))
            """
        ).rows(named: values) { row in
            (
                row.integer(0) ?? 0, row.integer(1) ?? 0, row.integer(2) ?? 0, row.integer(3) ?? 0,
                row.integer(4) ?? 0, row.text(5)
            )
        }.first
        guard let (total, delivered, due, stopped, dead, oldest) = row else { return QueueCounts() }
        var counts = QueueCounts(
            pending: max(0, total - delivered - stopped), due: due, delivered: delivered, dead: dead)
        if let oldest, let moment = Timestamp(rfc3339: oldest) {
            counts.oldestDueAgeSeconds = max(0, Double(now.microseconds - moment.microseconds) / 1e6)
        }
        return counts
    }

    /// Each endpoint's counts and health, from the totals, the partial index of stopped rows
    /// and the attempt summaries (`WebhookStore+Summaries`): a few seeks per endpoint and one
    /// pass over a day's minutes.
    public func endpointStats() throws -> [EndpointStats] {
        let now = clock.now()
        let counts = try database.prepare(
            """
            SELECT
              (SELECT coalesce(sum(deliveries - delivered), 0) FROM keysat_webhooks_totals WHERE endpoint_id = :id),
              (SELECT count(*) FROM webhook_deliveries INDEXED BY idx_keysat_webhooks_deliveries_stopped
                 WHERE endpoint_id = :id AND delivered_at IS NULL AND next_attempt_at IS NULL),
              (SELECT count(*) FROM webhook_deliveries INDEXED BY idx_keysat_webhooks_deliveries_stopped
                 WHERE endpoint_id = :id AND \(DeliveryRecord.State.dead.condition(""))),
              h.last_success_at, h.last_failure_at, coalesce(h.failure_streak, 0)
            FROM (SELECT 1) LEFT JOIN keysat_webhooks_endpoint_health AS h ON h.endpoint_id = :id
            """)
        var day: [String: (attempts: Int, successes: Int)] = [:]
        for (endpoint, attempts, successes) in try database.prepare(
            """
            SELECT endpoint_id, sum(attempts), sum(successes) FROM keysat_webhooks_attempt_minutes
            WHERE minute >= ? GROUP BY endpoint_id
            """
        ).rows(
            [.text(String(now.adding(seconds: -86_400).rfc3339.prefix(16)))],
            { ($0.string(0), $0.integer(1) ?? 0, $0.integer(2) ?? 0) })
        {
            day[endpoint] = (attempts, successes)
        }
        return try endpoints().map { endpoint in
            var stats = EndpointStats(endpoint: endpoint)
            _ = try counts.rows(named: [(":id", .text(endpoint.id))]) { row in
                let open = row.integer(0) ?? 0
                stats.pending = max(0, open - (row.integer(1) ?? 0))
                stats.dead = row.integer(2) ?? 0
                stats.lastSuccess = row.text(3)
                stats.lastFailure = row.text(4)
                stats.failureStreak = row.integer(5) ?? 0
            }
            let attempts = day[endpoint.id]?.attempts ?? 0
            stats.delivered24h = day[endpoint.id]?.successes ?? 0
            stats.successRate24h = attempts == 0 ? nil : Double(stats.delivered24h) / Double(attempts)
            return stats
        }
    }
}
