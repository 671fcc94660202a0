public import KeysatCore
public import KeysatStore

/// The recovery of endpoints a run disabled for failing (issue 22), as on SQLite
/// (`WebhookStore+Recovery.swift`), with runs on several hosts: a probe is taken by a
/// conditional update of `probed_at`, its lease.
extension PostgresStore {
    /// Takes the probes due now (see `WebhookStore.takeProbes`). The health rows are locked in
    /// endpoint order, as `writeHealth` locks them, and rows another run holds are skipped; a
    /// row another run probed meanwhile is judged on its new `probed_at` (READ COMMITTED
    /// re-reads a row before locking it) and left: one run probes an endpoint per interval.
    public func takeProbes(everySeconds: Int64, limit: Int) throws -> [DueDelivery] {
        let endpoints = try rows(
            """
            WITH due AS (
                SELECT h.endpoint_id FROM keysat_webhooks_endpoint_health AS h
                JOIN webhook_endpoints AS e ON e.id = h.endpoint_id
                WHERE h.disabled_failing_since IS NOT NULL AND NOT coalesce(e.active = 1, false)
                  AND (h.probed_at IS NULL OR h.probed_at <= now() - $1::bigint * interval '1 second')
                ORDER BY h.endpoint_id LIMIT $2 FOR UPDATE OF h SKIP LOCKED)
            UPDATE keysat_webhooks_endpoint_health AS h SET probed_at = now() FROM due
            WHERE h.endpoint_id = due.endpoint_id RETURNING h.endpoint_id
            """, [String(everySeconds), String(limit)]
        ).compactMap { $0[0] }
        return try endpoints.sorted().compactMap { id in
            try rows(
                Self.dueColumns + "\n" + """
                    WHERE d.endpoint_id = $1 AND \(DeliveryRecord.State.dead.condition())
                      AND NOT \(PayloadErasure.condition())
                    ORDER BY CASE WHEN coalesce(e.ordered, 0) = 1 THEN d.seq END, d.seq DESC LIMIT 1
                    """, [id]
            ).first.map(Self.dueDelivery)
        }
    }

    /// Enables again an endpoint whose probe was answered 2xx (see
    /// `WebhookStore.recoverEndpoint`): its row and health row locked, in that order.
    public func recoverEndpoint(id: String, reason: String) throws -> Int? {
        try transaction {
            guard
                let row = try rows(
                    """
                    SELECT keysat_rfc3339(h.disabled_failing_since) FROM webhook_endpoints AS e
                    JOIN keysat_webhooks_endpoint_health AS h ON h.endpoint_id = e.id
                    WHERE e.id = $1 AND h.disabled_failing_since IS NOT NULL AND NOT coalesce(e.active = 1, false)
                    FOR UPDATE OF e, h
                    """, [id]
                ).first, let since = row[0]
            else { return nil }
            let requeued = try requeueAfterOutage(endpointID: id, since: since)
            _ = try switchActive(id: id, true)
            announcing(OperationalEvent.endpointRecovered) {
                try writeOperationalEvent(
                    OperationalEvent.endpointRecovered,
                    data: OperationalEvent.recoveredData(endpointID: id, reason: reason, requeued: requeued),
                    excluding: id)
            }
            return requeued
        }
    }

    /// `endpoint enable` (see `WebhookStore.enableEndpoint`).
    public func enableEndpoint(id: String, requeue: Bool) throws -> (enabled: Bool, requeued: Int) {
        try transaction {
            var requeued = 0
            if requeue {
                guard
                    let row = try rows(
                        """
                        SELECT keysat_rfc3339(coalesce(h.disabled_failing_since, e.disabled_at)) FROM webhook_endpoints AS e
                        LEFT JOIN keysat_webhooks_endpoint_health AS h ON h.endpoint_id = e.id
                        WHERE e.id = $1 FOR UPDATE OF e
                        """, [id]
                    ).first
                else { throw WebhookStore.noSuchEndpoint(id) }
                requeued = try requeueAfterOutage(endpointID: id, since: row[0])
            }
            return (try switchActive(id: id, true), requeued)
        }
    }

    /// Re-queues, in the caller's transaction, the dead deliveries of `endpointID` that its
    /// outage since `since` dead-lettered, with `deliveries retry`'s statement (`requeue`).
    func requeueAfterOutage(endpointID: String, since: String?) throws -> Int {
        try run(
            Self.requeue + " WHERE "
                + EndpointRecovery.requeued(
                    "d", endpoint: "$1", since: "$2::timestamptz",
                    attemptedSince: """
                        EXISTS (SELECT 1 FROM webhook_delivery_attempts AS a
                                WHERE a.delivery_id = d.id AND a.started_at >= $2::timestamptz)
                        """),
            [endpointID, since])
    }

    /// What enabling or disabling by hand resets, in the caller's transaction (see
    /// `WebhookStore.resetRecovery`).
    func resetRecovery(endpointID: String, enabling: Bool) throws {
        if enabling {
            try run(
                """
                INSERT INTO keysat_webhooks_endpoint_health AS h (endpoint_id, failure_streak, streak_reset_at)
                VALUES ($1, 0, now())
                ON CONFLICT (endpoint_id) DO UPDATE SET failure_streak = 0,
                    streak_reset_at = excluded.streak_reset_at, disabled_failing_since = NULL, probed_at = NULL
                """, [endpointID])
        } else {
            try run(
                """
                UPDATE keysat_webhooks_endpoint_health SET disabled_failing_since = NULL, probed_at = NULL
                WHERE endpoint_id = $1
                """, [endpointID])
        }
    }
}
