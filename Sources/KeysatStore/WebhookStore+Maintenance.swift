public import KeysatCore

/// Purging old deliveries and counting the queue.
extension WebhookStore {
    /// Which finished deliveries `purge` deletes.
    public enum PurgeScope: String, Sendable, CaseIterable {
        case delivered
        case dead
        case allFinished = "all-finished"

        /// Delivered ones age from `delivered_at`, dead ones from `created_at`.
        var condition: String {
            let delivered = "(d.delivered_at IS NOT NULL AND d.delivered_at < :cutoff)"
            let dead = "(\(DeliveryRecord.State.dead.condition()) AND d.created_at < :cutoff)"
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
    /// - Returns: deliveries and attempts deleted (or, with `dryRun`, that would be).
    public func purge(scope: PurgeScope, before cutoff: Timestamp, dryRun: Bool, batch: Int = 1000) throws
        -> (
            deliveries: Int, attempts: Int
        )
    {
        let values: [(String, SQLValue)] = [
            (":cutoff", .text(cutoff.rfc3339)), (":batch", .integer(Int64(batch))),
        ]
        let chosen = "SELECT d.id FROM webhook_deliveries AS d WHERE \(scope.condition)"
        if dryRun {
            let deliveries =
                try database.prepare("SELECT count(*) FROM (\(chosen))").rows(named: values) {
                    $0.integer(0) ?? 0
                }.first ?? 0
            let attempts =
                try database.prepare(
                    "SELECT count(*) FROM webhook_delivery_attempts WHERE delivery_id IN (\(chosen))"
                ).rows(named: values) { $0.integer(0) ?? 0 }.first ?? 0
            return (deliveries, attempts)
        }
        var total = (deliveries: 0, attempts: 0)
        let page = "\(chosen) ORDER BY d.id LIMIT :batch"
        while true {
            let (deliveries, attempts) = try database.writeTransaction {
                try database.prepare("DELETE FROM webhook_delivery_attempts WHERE delivery_id IN (\(page))")
                    .run(named: values)
                let attempts = database.changes
                try database.prepare("DELETE FROM webhook_deliveries WHERE id IN (\(page))").run(
                    named: values)
                return (database.changes, attempts)
            }
            total.deliveries += deliveries
            total.attempts += attempts
            if deliveries < batch { return total }
        }
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
    }

    public func queueCounts() throws -> QueueCounts {
        let now = clock.now()
        let counts =
            try database.prepare(
                """
                SELECT
                  count(*) FILTER (WHERE \(DeliveryRecord.State.pending.condition(""))),
                  count(*) FILTER (WHERE \(DeliveryRecord.State.due.condition(""))),
                  count(*) FILTER (WHERE \(DeliveryRecord.State.delivered.condition(""))),
                  count(*) FILTER (WHERE \(DeliveryRecord.State.dead.condition("")))
                FROM webhook_deliveries
                """
            ).rows(named: [(":now", .text(now.rfc3339))]) { row in
                QueueCounts(
                    pending: row.integer(0) ?? 0, due: row.integer(1) ?? 0, delivered: row.integer(2) ?? 0,
                    dead: row.integer(3) ?? 0)
            }.first ?? QueueCounts()
        var result = counts
        // The partial index on next_attempt_at answers this at once.
        if let oldest = try database.prepare(
            """
            SELECT min(next_attempt_at) FROM webhook_deliveries
            WHERE \(DeliveryRecord.State.due.condition(""))
            """
        ).rows(named: [(":now", .text(now.rfc3339))], { $0.text(0) }).first ?? nil,
            let moment = Timestamp(rfc3339: oldest)
        {
            result.oldestDueAgeSeconds = max(0, Double(now.microseconds - moment.microseconds) / 1e6)
        }
        return result
    }

    public func endpointStats() throws -> [EndpointStats] {
        let now = clock.now()
        let statement = try database.prepare(
            """
            SELECT
              (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = :id
                 AND \(DeliveryRecord.State.pending.condition())),
              (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = :id
                 AND \(DeliveryRecord.State.dead.condition())),
              (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = :id AND d.delivered_at >= :day),
              (SELECT max(d.delivered_at) FROM webhook_deliveries d WHERE d.endpoint_id = :id),
              (SELECT count(*) FROM webhook_delivery_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
                 WHERE d.endpoint_id = :id AND a.started_at >= :day),
              (SELECT count(*) FROM webhook_delivery_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
                 WHERE d.endpoint_id = :id AND a.started_at >= :day AND a.status_code BETWEEN 200 AND 299),
              (SELECT max(a.started_at) FROM webhook_delivery_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
                 WHERE d.endpoint_id = :id AND coalesce(a.status_code, 0) NOT BETWEEN 200 AND 299),
              (SELECT count(*) FROM webhook_delivery_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
                 WHERE d.endpoint_id = :id AND coalesce(a.status_code, 0) NOT BETWEEN 200 AND 299
                   AND a.started_at > coalesce((SELECT max(a2.started_at) FROM webhook_delivery_attempts a2
                       JOIN webhook_deliveries d2 ON d2.id = a2.delivery_id
                       WHERE d2.endpoint_id = :id AND a2.status_code BETWEEN 200 AND 299), ''))
            """)
        return try endpoints().map { endpoint in
            try statement.rows(
                named: [(":id", .text(endpoint.id)), (":day", .text(now.adding(seconds: -86_400).rfc3339))]
            ) { row in
                let attempts = row.integer(4) ?? 0
                return EndpointStats(
                    endpoint: endpoint, pending: row.integer(0) ?? 0, dead: row.integer(1) ?? 0,
                    delivered24h: row.integer(2) ?? 0,
                    successRate24h: attempts == 0 ? nil : Double(row.integer(5) ?? 0) / Double(attempts),
                    lastSuccess: row.text(3), lastFailure: row.text(6), failureStreak: row.integer(7) ?? 0)
            }.first ?? EndpointStats(endpoint: endpoint)
        }
    }
}
