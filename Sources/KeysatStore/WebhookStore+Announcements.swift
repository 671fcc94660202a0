public import KeysatCore

/// keysat-deliver's events about itself (`OperationalEvent`), written by the same code as
/// keysat-enqueue's (`writeEvent`), in the transaction of the outcome that caused them.
extension WebhookStore {
    /// Runs `body`, which writes `eventType` events, under a savepoint of the caller's
    /// transaction. Its failure undoes only what it wrote and is said, not thrown: an
    /// announcement must never cost the outcome or the decision that caused it.
    func announcing(_ eventType: String, _ body: () throws -> Void) {
        do {
            try database.execute("SAVEPOINT keysat_webhooks_announce")
            do {
                try body()
                try database.execute("RELEASE keysat_webhooks_announce")
            } catch {
                try? database.execute("ROLLBACK TO keysat_webhooks_announce")
                try? database.execute("RELEASE keysat_webhooks_announce")
                throw error
            }
        } catch {
            OperationalEvent.warnNotEnqueued(eventType, error)
        }
    }

    /// Writes a `webhook.delivery.dead` event for each of `deliveries` (ids of rows this
    /// transaction just dead-lettered), read from the rows as they now are, to the endpoints
    /// that subscribe to it but the delivery's own. Never about a delivery of an event in the
    /// `webhook.` namespace: a dead-lettered operational event would announce itself again,
    /// and again (a loop).
    func announceDead(_ deliveries: [String]) {
        guard !deliveries.isEmpty else { return }
        announcing(OperationalEvent.deliveryDead) {
            let read = try database.prepare(
                """
                SELECT endpoint_id, event_type, attempt_count, last_status_code, last_error
                FROM webhook_deliveries WHERE id = ?1 AND delivered_at IS NULL AND next_attempt_at IS NULL
                """)
            var generator = SystemRandomNumberGenerator()
            let now = clock.now()
            for id in deliveries {
                guard
                    let data = try read.first(
                        [.text(id)],
                        { row -> (endpoint: String, data: [UInt8])? in
                            let eventType = row.string(1)
                            if OperationalEvent.isOperational(eventType) { return nil }
                            return (
                                row.string(0),
                                OperationalEvent.deadData(
                                    endpointID: row.string(0), deliveryID: id, eventType: eventType,
                                    attempts: row.integer(2) ?? 0, lastStatus: row.integer(3),
                                    lastError: row.text(4))
                            )
                        }) ?? nil
                else { continue }
                _ = try writeEvent(
                    eventType: OperationalEvent.deliveryDead, data: data.data, at: now,
                    excluding: data.endpoint,
                    using: &generator)
            }
        }
    }

    /// The `keysat_webhooks_state` row that remembers which level of an endpoint's failing
    /// streak was announced: "SINCE PERCENT", the streak's start and the level.
    public static func failingStateName(_ endpointID: String) -> String { "failing_announced:" + endpointID }

    /// Announces that `endpointID`'s failing streak, begun at `since`, reached `percent` of
    /// `--disable-after`, unless that level or a higher one of the same streak was announced
    /// already; `true` when it wrote the event. The level and the event are written together.
    public func announceFailing(endpointID: String, since: Timestamp, percent: Int, data: [UInt8]) throws
        -> Bool
    {
        try database.writeTransaction {
            let name = Self.failingStateName(endpointID)
            let said = try database.prepare("SELECT value FROM keysat_webhooks_state WHERE name = ?1")
                .first([.text(name)]) { $0.string(0) }
            if let said, !OperationalEvent.failingLevelPasses(said, since: since, percent: percent) {
                return false
            }
            try database.prepare(
                """
                INSERT INTO keysat_webhooks_state (name, value) VALUES (?1, ?2)
                ON CONFLICT (name) DO UPDATE SET value = excluded.value
                """
            ).run([.text(name), .text(OperationalEvent.failingLevel(since: since, percent: percent))])
            var generator = SystemRandomNumberGenerator()
            _ = try writeEvent(
                eventType: OperationalEvent.endpointFailing, data: data, at: clock.now(),
                excluding: endpointID,
                using: &generator)
            return true
        }
    }
}
