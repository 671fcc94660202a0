import KeysatCore

/// The recovery of endpoints a run disabled for failing (issue 22): their probes, their
/// enabling again with the re-queue of what the outage dead-lettered, and what any enable
/// resets. The health table holds the state (schema step 16).
extension WebhookStore {
    /// Takes the probes due now: endpoints a run disabled for their failing streak
    /// (`disableEndpoint(id:reason:failingSince:)`), still disabled, last probed (or disabled)
    /// at least `everySeconds` ago, up to `limit`, longest unprobed first. Each is marked
    /// probed now, in the same transaction, whether a delivery is found for it or not.
    /// - Returns: for each, its newest dead delivery as a run sends it (`endpointActive` false).
    public func takeProbes(everySeconds: Int64, limit: Int) throws -> [DueDelivery] {
        let now = clock.now()
        // Read first: an idle run must not pay for a write transaction when no endpoint was
        // disabled for failing (0.3 ms of every run's start, make bench).
        guard
            try database.prepare(
                "SELECT 1 FROM keysat_webhooks_endpoint_health WHERE disabled_failing_since IS NOT NULL LIMIT 1"
            ).first { _ in true } != nil
        else { return [] }
        let endpoints = try database.writeTransaction {
            let ids = try database.prepare(
                """
                SELECT h.endpoint_id FROM keysat_webhooks_endpoint_health AS h
                JOIN webhook_endpoints AS e ON e.id = h.endpoint_id
                WHERE h.disabled_failing_since IS NOT NULL AND NOT \(Self.isActive("e"))
                  AND (h.probed_at IS NULL OR h.probed_at <= ?1)
                ORDER BY h.probed_at LIMIT ?2
                """
            ).rows([.text(now.adding(seconds: -everySeconds).rfc3339), .integer(Int64(limit))]) { $0.string(0) }
            let take = try database.prepare(
                "UPDATE keysat_webhooks_endpoint_health SET probed_at = ?1 WHERE endpoint_id = ?2")
            for id in ids { try take.run([.text(now.rfc3339), .text(id)]) }
            return ids
        }
        let newestDead = try database.prepare(
            Self.probeColumns + "\n" + """
                WHERE d.endpoint_id = ?2 AND \(DeliveryRecord.State.dead.condition())
                  AND NOT \(PayloadErasure.condition())
                ORDER BY CASE WHEN coalesce(e.ordered, 0) = 1 THEN d.rowid END, d.rowid DESC LIMIT 1
                """)
        return try endpoints.compactMap { id in
            try newestDead.first([.text(now.rfc3339), .text(id)]) { Self.dueDelivery($0) }
        }
    }

    /// `dueColumns` for a dead row: its `next_attempt_at`, NULL, read as the moment `?1`, so
    /// that the row check (`DeliveryRowCheck`) judges its id and count and not the NULL a dead
    /// row has there.
    static let probeColumns = dueColumns.replacing(
        "d.attempt_count, d.next_attempt_at,", with: "d.attempt_count, coalesce(d.next_attempt_at, ?1),")

    /// Enables `id` again after its probe was answered 2xx, if it is still disabled by a run
    /// for failing (an operator may have disabled or enabled it meanwhile), re-queues what the
    /// outage dead-lettered (`EndpointRecovery.requeued`), and announces it
    /// (`webhook.endpoint.recovered`), in one transaction. The probe's outcome must be
    /// committed first: its delivery is then delivered, not dead, and not re-queued.
    /// - Returns: how many deliveries were re-queued; `nil` when it was not enabled.
    public func recoverEndpoint(id: String, reason: String) throws -> Int? {
        try database.writeTransaction {
            guard
                let since = try database.prepare(
                    """
                    SELECT h.disabled_failing_since FROM keysat_webhooks_endpoint_health AS h
                    JOIN webhook_endpoints AS e ON e.id = h.endpoint_id
                    WHERE h.endpoint_id = ?1 AND h.disabled_failing_since IS NOT NULL AND NOT \(Self.isActive("e"))
                    """
                ).first([.text(id)], { $0.string(0) })
            else { return nil }
            let requeued = try requeueAfterOutage(endpointID: id, since: since)
            _ = try switchActive(id: id, true)
            announcing(OperationalEvent.endpointRecovered) {
                var generator = SystemRandomNumberGenerator()
                _ = try writeEvent(
                    eventType: OperationalEvent.endpointRecovered,
                    data: OperationalEvent.recoveredData(endpointID: id, reason: reason, requeued: requeued),
                    at: clock.now(), excluding: id, using: &generator)
            }
            return requeued
        }
    }

    /// `endpoint enable`: enables `id` (resetting its failing streak, whatever its state), and
    /// with `requeue` first re-queues what its outage dead-lettered, as a recovery by probe
    /// does; the outage began when its failing streak began, if a run disabled it for failing,
    /// else when it was disabled (none for an operator's disable, which records no time: then
    /// only the deliveries dead-lettered because it was disabled). One transaction.
    /// - Returns: whether it was disabled, and how many deliveries were re-queued.
    public func enableEndpoint(id: String, requeue: Bool) throws -> (enabled: Bool, requeued: Int) {
        try database.writeTransaction {
            var requeued = 0
            if requeue {
                let since =
                    try database.prepare(
                        """
                        SELECT coalesce(h.disabled_failing_since, e.disabled_at) FROM webhook_endpoints AS e
                        LEFT JOIN keysat_webhooks_endpoint_health AS h ON h.endpoint_id = e.id WHERE e.id = ?1
                        """
                    ).first([.text(id)]) { $0.text(0) } ?? nil
                requeued = try requeueAfterOutage(endpointID: id, since: since)
            }
            return (try switchActive(id: id, true), requeued)
        }
    }

    /// Re-queues, in the caller's transaction, the dead deliveries of `endpointID` that its
    /// outage since `since` dead-lettered, as `deliveries retry` does (`requeueSQL`: same ids,
    /// attempt budget back).
    func requeueAfterOutage(endpointID: String, since: String?) throws -> Int {
        let attempted = """
            EXISTS (SELECT 1 FROM webhook_delivery_attempts AS a
                    WHERE \(AttemptHistory.of("d", "a")) AND a.started_at >= :since)
            """
        try database.prepare(
            Self.requeueSQL(now: ":now")
                + " WHERE id IN (SELECT d.id FROM webhook_deliveries AS d WHERE "
                + EndpointRecovery.requeued("d", endpoint: ":endpoint", since: ":since", attemptedSince: attempted)
                + ")"
        ).run(named: [
            (":now", .text(clock.now().rfc3339)), (":endpoint", .text(endpointID)), (":since", .optional(since)),
        ])
        return database.changes
    }

    /// What enabling (`enabling`) or disabling an endpoint by hand resets, in the caller's
    /// transaction: an enable starts a new failing streak (`streak_reset_at`, which
    /// `failingSince` counts from, and the streak count at 0); either ends its probes.
    func resetRecovery(endpointID: String, enabling: Bool) throws {
        if enabling {
            try database.prepare(
                """
                INSERT INTO keysat_webhooks_endpoint_health (endpoint_id, failure_streak, streak_reset_at)
                VALUES (?1, 0, ?2)
                ON CONFLICT (endpoint_id) DO UPDATE SET failure_streak = 0,
                    streak_reset_at = excluded.streak_reset_at, disabled_failing_since = NULL, probed_at = NULL
                """
            ).run([.text(endpointID), .text(clock.now().rfc3339)])
        } else {
            try database.prepare(
                """
                UPDATE keysat_webhooks_endpoint_health SET disabled_failing_since = NULL, probed_at = NULL
                WHERE endpoint_id = ?1
                """
            ).run([.text(endpointID)])
        }
    }
}
