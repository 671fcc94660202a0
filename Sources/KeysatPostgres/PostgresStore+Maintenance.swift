public import KeysatCore
public import KeysatStore

/// Purging old deliveries and counting the queue, on PostgreSQL.
extension PostgresStore: QueueMaintenance {
    /// Deletes finished deliveries older than `cutoff`, with their attempt history, in
    /// transactions of at most `batch` rows, as SQLite's does: the scopes are
    /// `WebhookStore.PurgeScope`'s conditions, rows are visited in `(created_at, id)` order from
    /// where the last batch ended (keyset paging on `idx_keysat_webhooks_deliveries_created`),
    /// and pending rows are never deleted.
    ///
    /// Never a row under a live lease either (a finished row has none unless another program
    /// wrote one), nor one another session holds: each batch locks its rows `FOR UPDATE SKIP
    /// LOCKED`, which also re-reads a row changed since the statement began (a replayed row,
    /// pending again, is left). A row skipped so stays for the next purge; a batch cut short
    /// by skipped rows ends the purge early, which only delays.
    ///
    /// - Returns: deliveries and attempts deleted (or, with `dryRun`, that would be).
    public func purge(scope: WebhookStore.PurgeScope, before cutoff: Timestamp, dryRun: Bool, batch: Int)
        throws
        -> (deliveries: Int, attempts: Int)
    {
        let chosen = """
            d.created_at < $1::timestamptz AND \(scope.condition(cutoff: "$1::timestamptz")) AND \(Self.unleased)
            """
        if dryRun {
            // One statement: both counts from one snapshot.
            let row = try rows(
                """
                SELECT (SELECT count(*) FROM webhook_deliveries AS d WHERE \(chosen)),
                       (SELECT count(*) FROM webhook_deliveries AS d
                          JOIN webhook_delivery_attempts AS a ON a.delivery_id = d.id WHERE \(chosen))
                """, [cutoff.rfc3339]
            ).first
            return (Int(row?[0] ?? "") ?? 0, Int(row?[1] ?? "") ?? 0)
        }
        var total = (deliveries: 0, attempts: 0)
        var cursor: (createdAt: String, id: String)?
        while true {
            let page = try transaction { try purgeBatch(chosen, cutoff: cutoff, after: cursor, batch: batch) }
            total.deliveries += page.deleted
            total.attempts += page.attempts
            guard page.chosen == batch, let last = page.last else { return total }
            cursor = last
        }
    }

    /// One batch of `purge`: the page after `cursor`, locked, then its history and its rows
    /// deleted, in one statement. The cursor is the page's last `(created_at, id)`, the time
    /// as text with its microseconds (a `timestamptz`'s whole precision), so no row is
    /// visited twice or passed over.
    private func purgeBatch(
        _ chosen: String, cutoff: Timestamp, after cursor: (createdAt: String, id: String)?, batch: Int
    ) throws -> (chosen: Int, deleted: Int, attempts: Int, last: (createdAt: String, id: String)?) {
        let after = cursor == nil ? "" : "AND (d.created_at, d.id) > ($3::timestamptz, $4)"
        let row =
            try rows(
                """
                WITH page AS MATERIALIZED (
                    SELECT d.seq, d.id, d.created_at FROM webhook_deliveries AS d WHERE \(chosen) \(after)
                    ORDER BY d.created_at, d.id LIMIT $2 FOR UPDATE OF d SKIP LOCKED),
                history AS (
                    DELETE FROM webhook_delivery_attempts AS a USING page WHERE a.delivery_id = page.id RETURNING 1),
                gone AS (
                    DELETE FROM webhook_deliveries AS d USING page WHERE d.seq = page.seq RETURNING 1),
                last AS (SELECT created_at, id FROM page ORDER BY created_at DESC, id DESC LIMIT 1)
                SELECT (SELECT count(*) FROM page), (SELECT count(*) FROM gone), (SELECT count(*) FROM history),
                       (SELECT keysat_rfc3339(created_at) FROM last), (SELECT id FROM last)
                """, [cutoff.rfc3339, String(batch)] + (cursor.map { [$0.createdAt, $0.id] } ?? [])
            ).first ?? []
        let count = { (index: Int) in Int((row.count > index ? row[index] : nil) ?? "") ?? 0 }
        let last = row.count == 5 ? row[3].flatMap { time in row[4].map { (time, $0) } } : nil
        return (count(0), count(1), count(2), last)
    }

    /// The whole queue's counts, each from a partial index, in one statement (one snapshot).
    ///
    /// No totals are kept by triggers here (PostgresSchema): pending, due, dead and the oldest
    /// due are read from the partial indexes, work proportional to the backlog and the dead, as
    /// on SQLite; delivered is every row less those not delivered (the pending index): the
    /// count of the table is proportional to the history (a sequential scan: 200,000 rows,
    /// 50 ms), the one count that SQLite reads from its totals in constant time.
    public func queueCounts() throws -> WebhookStore.QueueCounts {
        let row =
            try rows(
                """
                SELECT
                  (SELECT count(*) FROM webhook_deliveries AS d WHERE \(DeliveryRecord.State.pending.condition())),
                  (SELECT count(*) FROM webhook_deliveries AS d WHERE \(DeliveryRecord.State.due.condition(now: "now()"))),
                  (SELECT count(*) FROM webhook_deliveries)
                    - (SELECT count(*) FROM webhook_deliveries WHERE delivered_at IS NULL),
                  (SELECT count(*) FROM webhook_deliveries AS d WHERE \(DeliveryRecord.State.dead.condition())),
                  (SELECT extract(epoch FROM now() - min(d.next_attempt_at)) FROM webhook_deliveries AS d
                     WHERE \(DeliveryRecord.State.due.condition(now: "now()")))
                """
            ).first ?? []
        let count = { (index: Int) in Int((row.count > index ? row[index] : nil) ?? "") ?? 0 }
        return WebhookStore.QueueCounts(
            pending: count(0), due: count(1), delivered: count(2), dead: count(3),
            oldestDueAgeSeconds: max(0, row.count > 4 ? Double(row[4] ?? "") ?? 0 : 0))
    }

    /// Each endpoint's counts and health: pending and dead counted in one pass over the rows
    /// not delivered (the partial indexes on `delivered_at IS NULL`: the backlog and the dead,
    /// as SQLite's reads, and once for all endpoints: a count per endpoint read the whole
    /// pending index once per endpoint, 120 ms for 20 endpoints and 6,000 pending), health from
    /// `keysat_webhooks_endpoint_health` and the last day's minutes from
    /// `keysat_webhooks_attempt_minutes`, both written by `record`.
    public func endpointStats() throws -> [WebhookStore.EndpointStats] {
        try endpointStats(for: endpoints())
    }

    /// `endpointStats` for these endpoints, in their order, in one statement.
    func endpointStats(for endpoints: [Endpoint]) throws -> [WebhookStore.EndpointStats] {
        guard !endpoints.isEmpty else { return [] }
        let rows = try rows(
            """
            WITH open AS (
                SELECT d.endpoint_id,
                       count(*) FILTER (WHERE \(DeliveryRecord.State.pending.condition())) AS pending,
                       count(*) FILTER (WHERE \(DeliveryRecord.State.dead.condition())) AS dead
                FROM webhook_deliveries AS d WHERE d.delivered_at IS NULL GROUP BY d.endpoint_id),
            day AS (
                SELECT endpoint_id, sum(attempts) AS attempts, sum(successes) AS successes
                FROM keysat_webhooks_attempt_minutes
                WHERE minute >= date_trunc('minute', now() - interval '1 day') GROUP BY endpoint_id)
            SELECT coalesce(o.pending, 0), coalesce(o.dead, 0),
                   keysat_rfc3339(h.last_success_at), keysat_rfc3339(h.last_failure_at), coalesce(h.failure_streak, 0),
                   coalesce(m.attempts, 0), coalesce(m.successes, 0)
            FROM unnest($1::text[]) WITH ORDINALITY AS e(id, n)
            LEFT JOIN open AS o ON o.endpoint_id = e.id
            LEFT JOIN keysat_webhooks_endpoint_health AS h ON h.endpoint_id = e.id
            LEFT JOIN day AS m ON m.endpoint_id = e.id
            ORDER BY e.n
            """, [PostgresArray.literal(endpoints.map(\.id))])
        return zip(endpoints, rows).map { endpoint, row in
            var stats = WebhookStore.EndpointStats(endpoint: endpoint)
            stats.pending = Int(row[0] ?? "") ?? 0
            stats.dead = Int(row[1] ?? "") ?? 0
            stats.lastSuccess = row[2]
            stats.lastFailure = row[3]
            stats.failureStreak = Int(row[4] ?? "") ?? 0
            let attempts = Int(row[5] ?? "") ?? 0
            stats.delivered24h = Int(row[6] ?? "") ?? 0
            stats.successRate24h = attempts == 0 ? nil : Double(stats.delivered24h) / Double(attempts)
            return stats
        }
    }

    /// The metrics-file failures recorded so far (`keysat_webhooks_state`), read as SQLite's.
    public func metricsFailures() throws -> WebhookStore.MetricsFailures {
        var result = WebhookStore.MetricsFailures(count: 0, last: nil)
        for row in try rows(
            "SELECT name, value FROM keysat_webhooks_state WHERE name IN ('metrics_failures', 'metrics_last_failure')"
        ) {
            if row[0] == "metrics_failures" { result.count = max(0, Int(row[1] ?? "") ?? 0) }
            if row[0] == "metrics_last_failure" { result.last = row[1].flatMap { Timestamp(rfc3339: $0) } }
        }
        return result
    }

    /// Counts one more run that could not write its metrics file, in one statement: the count
    /// is read and incremented under the row's lock (`ON CONFLICT DO UPDATE` works on the
    /// latest version), so two hosts at once add two. A value that is not a count, as Swift's
    /// `Int` reads it, counts as 0, and the count stops at `Int.max`, as on SQLite.
    public func recordMetricsFailure(at now: Timestamp) throws {
        try run(
            """
            INSERT INTO keysat_webhooks_state AS s (name, value)
            VALUES ('metrics_failures', '1'), ('metrics_last_failure', $1)
            ON CONFLICT (name) DO UPDATE SET value = CASE
                WHEN s.name <> 'metrics_failures' THEN excluded.value
                WHEN s.value !~ '^[+-]?[0-9]{1,19}$' THEN '1'
                WHEN s.value::numeric NOT BETWEEN -9223372036854775808 AND 9223372036854775807 THEN '1'
                ELSE least(greatest(s.value::numeric, 0) + 1, 9223372036854775807)::text END
            """, [now.rfc3339])
    }
}
