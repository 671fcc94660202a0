public import KeysatCore
import KeysatStore

/// keysat-deliver's events about itself (`OperationalEvent`), written by the functions that
/// write keysat-enqueue's (`subscribers`, `holdOrdered`, `insertDeliveries`): the same rows and
/// envelope, the database's clock.
extension PostgresStore {
    /// Runs `body`, which writes `eventType` events: under a savepoint inside a transaction (a
    /// failure undoes only what it wrote), else in a transaction of its own. Its failure is said,
    /// not thrown: an announcement must never cost what caused it.
    func announcing(_ eventType: String, _ body: () throws -> Void) {
        do {
            guard connection.isInTransaction else { return try transaction(body) }
            _ = try run("SAVEPOINT keysat_webhooks_announce")
            do {
                try body()
                _ = try run("RELEASE SAVEPOINT keysat_webhooks_announce")
            } catch {
                _ = try? run("ROLLBACK TO SAVEPOINT keysat_webhooks_announce")
                _ = try? run("RELEASE SAVEPOINT keysat_webhooks_announce")
                throw error
            }
        } catch {
            OperationalEvent.warnNotEnqueued(eventType, error)
        }
    }

    /// Writes one `eventType` event with `data` to the active endpoints subscribed to it but
    /// `excluding`, the endpoint it is about.
    func writeOperationalEvent(_ eventType: String, data: [UInt8], excluding: String) throws {
        let (now, endpoints, ordered, _) = try subscribers(of: eventType, data: data)
        let to = endpoints.filter { $0 != excluding }
        guard let now, !to.isEmpty else { return }
        try holdOrdered(ordered.filter { $0 != excluding })
        var generator = SystemRandomNumberGenerator()
        try insertDeliveries(
            to.map { EnqueueResult.Delivery(id: Identifiers.uuid4(using: &generator), endpointID: $0) },
            eventType: eventType, payload: Envelope.make(eventType: eventType, timestamp: now, data: data))
    }

    /// Writes a `webhook.delivery.dead` event for each of `deliveries` (ids of rows just
    /// dead-lettered), read from the rows as they now are, to the endpoints that subscribe to it
    /// but the delivery's own. Called right after the outcomes' commit, in a transaction of its
    /// own, not inside it: the outcomes' commit must not wait for (or deadlock on) the row lock
    /// of an ordered subscriber that a claim holds. Never about a delivery of an event in the
    /// `webhook.` namespace: a dead-lettered operational event would announce itself again,
    /// and again (a loop).
    func announceDead(_ deliveries: [String]) {
        guard !deliveries.isEmpty else { return }
        announcing(OperationalEvent.deliveryDead) {
            let dead = try rows(
                """
                SELECT id, endpoint_id, event_type, attempt_count, last_status_code, last_error
                FROM webhook_deliveries
                WHERE id = ANY($1::text[]) AND delivered_at IS NULL AND next_attempt_at IS NULL
                ORDER BY seq
                """, [PostgresArray.literal(deliveries)])
            let (now, subscribed) = try subscriberRows(of: OperationalEvent.deliveryDead)
            guard let now, !subscribed.isEmpty else { return }
            try holdOrdered(subscribed.filter(\.ordered).map(\.id))
            var generator = SystemRandomNumberGenerator()
            for row in dead {
                let eventType = row[2] ?? ""
                let about = row[1] ?? ""
                guard !OperationalEvent.isOperational(eventType) else { continue }
                let data = OperationalEvent.deadData(
                    endpointID: about, deliveryID: row[0] ?? "", eventType: eventType,
                    attempts: row[3].flatMap { Int($0) } ?? 0, lastStatus: row[4].flatMap { Int($0) },
                    lastError: row[5])
                let others = subscribed.filter { $0.id != about }
                let to = EventFilter.receivers(
                    others.map(\.id), filters: Self.filters(of: others), eventType: OperationalEvent.deliveryDead,
                    timestamp: now, data: data)
                guard !to.isEmpty else { continue }
                try insertDeliveries(
                    to.map {
                        EnqueueResult.Delivery(id: Identifiers.uuid4(using: &generator), endpointID: $0)
                    },
                    eventType: OperationalEvent.deliveryDead,
                    payload: Envelope.make(
                        eventType: OperationalEvent.deliveryDead, timestamp: now, data: data))
            }
        }
    }

    /// `DeliveryStore.announceFailing`: the level kept in `keysat_webhooks_state` (as on
    /// SQLite), its row locked while it is judged, so that two runs judging one endpoint at
    /// once announce a level once.
    public func announceFailing(endpointID: String, since: Timestamp, percent: Int, data: [UInt8]) throws
        -> Bool
    {
        let name = WebhookStore.failingStateName(endpointID)
        return try transaction {
            _ = try run(
                "INSERT INTO keysat_webhooks_state (name, value) VALUES ($1, '') ON CONFLICT (name) DO NOTHING",
                [name])
            let said =
                try value("SELECT value FROM keysat_webhooks_state WHERE name = $1 FOR UPDATE", [name]) ?? ""
            guard OperationalEvent.failingLevelPasses(said, since: since, percent: percent) else {
                return false
            }
            _ = try run(
                "UPDATE keysat_webhooks_state SET value = $2 WHERE name = $1",
                [name, OperationalEvent.failingLevel(since: since, percent: percent)])
            try writeOperationalEvent(OperationalEvent.endpointFailing, data: data, excluding: endpointID)
            return true
        }
    }
}
