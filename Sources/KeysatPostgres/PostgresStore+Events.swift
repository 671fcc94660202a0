import KeysatCore
public import KeysatStore

/// Events in: SQLite's semantics (`WebhookStore.enqueue`, its event types), with the database's
/// clock and with several hosts enqueueing at once.
extension PostgresStore: EventQueue {
    /// Writes one pending delivery per active endpoint subscribed to `eventType`, in one
    /// transaction, each with the same envelope around `data`; then, when it wrote any, wakes
    /// the runs that linger on other hosts.
    ///
    /// As `WebhookStore.enqueue`: the same ids, envelope bytes, subscriptions and idempotency
    /// keys, the times the database's (`now()`, the envelope's timestamp is the rows'
    /// `created_at`). Two hosts enqueueing with one key at once make one event: the key's row
    /// is inserted before the deliveries, `ON CONFLICT DO NOTHING`, so the second waits for the
    /// first's commit, writes nothing and answers with the first's deliveries.
    ///
    /// - Parameters:
    ///   - eventType: a validated event type.
    ///   - data: bytes already validated as one JSON value (so UTF-8 without NUL, which
    ///     PostgreSQL's text holds as they are: signatures cover these bytes).
    ///   - idempotencyKey: when given and seen in the last 7 days with the same event type
    ///     and data, nothing is written and the deliveries it produced then are returned.
    ///   - generator: the source of delivery ids.
    /// - Throws: `KeysatError` `data` (65) when the key was used for another event type or
    ///   other data (`WebhookStore.idempotencyKeyReused`).
    public func enqueue(
        eventType: String, data: [UInt8], idempotencyKey: String?, orderingKey: String?,
        using generator: inout some RandomNumberGenerator
    ) throws -> EnqueueResult {
        let fingerprint = idempotencyKey.map { _ in
            WebhookStore.fingerprint(eventType: eventType, data: data)
        }
        let result = try transaction { () throws -> EnqueueResult in
            if let key = idempotencyKey, let fingerprint {
                try forgetExpiredKeys()
                if let previous = try previousEnqueue(
                    key: key, eventType: eventType, fingerprint: fingerprint)
                {
                    return previous
                }
            }
            let (now, endpoints, ordered, orderBy) = try subscribers(of: eventType, data: data)
            try holdOrdered(ordered)
            let written = endpoints.map {
                EnqueueResult.Delivery(id: Identifiers.uuid4(using: &generator), endpointID: $0)
            }
            if let key = idempotencyKey, let fingerprint,
                try !keepKey(key, eventType: eventType, fingerprint: fingerprint, deliveries: written)
            {
                // Another session committed this key since it was looked up: its event stands.
                guard
                    let previous = try previousEnqueue(
                        key: key, eventType: eventType, fingerprint: fingerprint)
                else {
                    throw KeysatError(
                        .temporary, "idempotency key '\(key)' changed hands meanwhile; try again")
                }
                return previous
            }
            if let now, !written.isEmpty {
                let payload = Envelope.make(eventType: eventType, timestamp: now, data: data)
                let keys = written.map { orderingKey ?? OrderingKey.derive(from: data, stored: orderBy[$0.endpointID]) }
                try insertDeliveries(written, eventType: eventType, payload: payload, keys: keys)
            }
            return EnqueueResult(eventType: eventType, deliveries: written, replayed: false)
        }
        if !result.replayed && !result.deliveries.isEmpty { wakeRuns() }
        return result
    }

    /// Enqueues a sample of `eventType` marked `"test":true` (`keysat-webhooks trigger`), as
    /// `WebhookStore.enqueueSample`: to its subscribers by the rule of `subscribers(of:data:)`, or to
    /// `endpointID` alone (active) whatever it subscribes to; then wakes lingering runs.
    public func enqueueSample(
        eventType: String, data: [UInt8], endpointID: String?,
        using generator: inout some RandomNumberGenerator
    ) throws -> EnqueueResult {
        let result = try transaction { () throws -> EnqueueResult in
            if let endpointID, try !endpoint(id: endpointID).active {
                throw WebhookStore.testOfDisabledEndpoint(endpointID)
            }
            var (now, endpoints, ordered, _) = try subscribers(of: eventType, data: data, test: true)
            if let endpointID {
                now = Timestamp(rfc3339: try value("SELECT keysat_rfc3339(now())") ?? "")
                ordered = try endpoint(id: endpointID).ordered ? [endpointID] : []
                endpoints = [endpointID]
            }
            try holdOrdered(ordered)
            let written = endpoints.map {
                EnqueueResult.Delivery(id: Identifiers.uuid4(using: &generator), endpointID: $0)
            }
            if let now, !written.isEmpty {
                let payload = Envelope.make(eventType: eventType, timestamp: now, data: data, test: true)
                try insertDeliveries(written, eventType: eventType, payload: payload)
            }
            return EnqueueResult(eventType: eventType, deliveries: written, replayed: false)
        }
        if !result.deliveries.isEmpty { wakeRuns() }
        return result
    }

    /// After the commit, never inside the transaction: NOTIFY takes an instance-wide lock at
    /// commit (docs/POSTGRES.md: 16 writers fell from ~4,000 to ~2,000 transactions/s). A wake-up
    /// that fails loses nothing (the run's timer is the safety net), so it is not an error and
    /// says nothing: the enqueue is durable once COMMIT returned.
    private func wakeRuns() {
        _ = try? connection.execute("NOTIFY \(Self.wakeUpChannel)")
    }

    /// The database's present moment and the active endpoints subscribed to `eventType`
    /// (`EventSubscription.matches`, as SQLite's `WebhookStore.subscribes`), in SQLite's order
    /// (`created_at`, `id`), and which of them are ordered; no moment when there is no active
    /// endpoint. With them, those a run disabled for failing, as on SQLite
    /// (`WebhookStore.receivesWhileDisabled`). Only those whose filters take the event's
    /// envelope around `data` (`EventFilter.receivers`); with each one's `order_by` where it has
    /// one (`OrderingKey.derive`).
    func subscribers(of eventType: String, data: [UInt8], test: Bool = false) throws
        -> (now: Timestamp?, ids: [String], ordered: [String], orderBy: [String: String])
    {
        let (now, candidates) = try subscriberRows(of: eventType)
        guard let now else { return (nil, [], [], [:]) }
        let ids = EventFilter.receivers(
            candidates.map(\.id), filters: Self.filters(of: candidates), eventType: eventType, timestamp: now,
            data: data, test: test)
        let taking = Set(ids)
        var orderBy: [String: String] = [:]
        for row in candidates where taking.contains(row.id) {
            if let path = row.orderBy { orderBy[row.id] = path }
        }
        return (now, ids, candidates.filter { $0.ordered && taking.contains($0.id) }.map(\.id), orderBy)
    }

    /// An endpoint that subscribes to an event: whether it is ordered, its stored filter and
    /// its `order_by`, as stored.
    typealias SubscriberRow = (id: String, ordered: Bool, filter: String?, orderBy: String?)

    /// The stored filters of `rows` by index, as `EventFilter.receivers` takes them.
    static func filters(of rows: [SubscriberRow]) -> EventFilter.Stored {
        var filters = EventFilter.Stored()
        for (place, row) in rows.enumerated() {
            if let text = row.filter { filters.add(text, at: place) }
        }
        return filters
    }

    /// The database's present moment and the endpoints that subscribe to `eventType` (the rule
    /// of `subscribers(of:data:)`), each as a `SubscriberRow`.
    func subscriberRows(of eventType: String) throws -> (now: Timestamp?, rows: [SubscriberRow]) {
        let found = try rows(
            """
            SELECT keysat_rfc3339(now()), id, event_types, ordered, event_filter, order_by FROM webhook_endpoints AS e
            WHERE active = 1 OR EXISTS (SELECT 1 FROM keysat_webhooks_endpoint_health AS h
                                        WHERE h.endpoint_id = e.id AND h.disabled_failing_since IS NOT NULL)
            ORDER BY created_at, id
            """)
        let now = found.first.flatMap { $0[0] }.flatMap { Timestamp(rfc3339: $0) }
        let subscribed = found.filter { row in
            EventSubscription.matches(JSONStrings.topLevel(row[2] ?? "") ?? [], eventType)
        }
        return (now, subscribed.map { (id: $0[1] ?? "", ordered: $0[3] == "1", filter: $0[4], orderBy: $0[5]) })
    }

    /// Holds the rows of the ordered endpoints this enqueue writes for (`FOR SHARE`) until it
    /// commits, taken before its deliveries get their `seq`.
    ///
    /// Without it an ordered endpoint could receive a newer event first: this enqueue's row
    /// (seq 1) is not yet committed, another's (seq 2) is, and a run claims seq 2, since no
    /// older pending row is visible. `keysat_claim` on an ordered endpoint locks its row `FOR UPDATE`
    /// before it looks for older pending rows, so a claim now waits for the enqueues in flight
    /// for that endpoint and then sees their rows (its next statement takes a fresh snapshot).
    /// Enqueues do not wait for each other (shared locks); rows are taken in `id` order, the
    /// order the runs' writes of endpoint rows keep, so no two sessions wait on each other in
    /// a circle. Unordered endpoints take no lock: their order is not promised.
    func holdOrdered(_ endpoints: [String]) throws {
        guard !endpoints.isEmpty else { return }
        _ = try rows(
            "SELECT 1 FROM webhook_endpoints WHERE id = ANY($1::text[]) ORDER BY id FOR SHARE",
            [PostgresArray.literal(endpoints)])
    }

    /// `keys`, one per delivery (or none: no keys), are their ordering keys; each keyed one
    /// gets the next sequence number of its (endpoint, key) first (`nextSequences`).
    func insertDeliveries(
        _ written: [EnqueueResult.Delivery], eventType: String, payload: [UInt8], keys: [String?] = []
    ) throws {
        let sequences = try nextSequences(written, keys: keys)
        // One statement for every endpoint, the payload sent once; `seq` follows the endpoints'
        // order, as SQLite's rowids do.
        try run(
            """
            INSERT INTO webhook_deliveries
                (id, endpoint_id, event_type, payload_json, attempt_count, next_attempt_at, created_at,
                 keysat_webhooks_ordering_key, keysat_webhooks_sequence)
            SELECT d.id, d.endpoint_id, $3, $4, 0, now(), now(), d.key, d.sequence
            FROM unnest($1::text[], $2::text[], $5::text[], $6::bigint[]) WITH ORDINALITY AS d(id, endpoint_id, key, sequence, n)
            ORDER BY d.n
            """,
            [
                PostgresArray.literal(written.map(\.id)), PostgresArray.literal(written.map(\.endpointID)),
                eventType, String(decoding: payload, as: UTF8.self),
                PostgresArray.literal(written.indices.map { $0 < keys.count ? keys[$0] : nil }),
                PostgresArray.literal(sequences.map { $0.map(String.init) }),
            ])
    }

    /// The next sequence number of each keyed delivery's (endpoint, key), from the counter row
    /// (`keysat_webhooks_key_sequences`): the upsert's row lock, held until this enqueue
    /// commits, makes another host's enqueue of the same key wait and then take the number
    /// after, so numbers follow commits and a run can never see a newer one of a key before an
    /// older one is visible. Rows are taken in endpoint order, so that two enqueues never wait
    /// on each other in a circle.
    private func nextSequences(_ written: [EnqueueResult.Delivery], keys: [String?]) throws -> [Int64?] {
        var sequences = [Int64?](repeating: nil, count: written.count)
        let keyed = written.indices.filter { $0 < keys.count && keys[$0] != nil }
        for index in keyed.sorted(by: { written[$0].endpointID < written[$1].endpointID }) {
            let endpointID = written[index].endpointID
            let last = try value(
                """
                INSERT INTO keysat_webhooks_key_sequences AS k (endpoint_id, ordering_key, last) VALUES ($1, $2, 1)
                ON CONFLICT (endpoint_id, ordering_key) DO UPDATE SET last = k.last + 1
                    WHERE k.last BETWEEN 0 AND \(WebhookStore.lastSequence - 1)
                RETURNING last
                """, [endpointID, keys[index]])
            guard let next = last.flatMap({ Int64($0) }) else {
                throw WebhookStore.keyCounterDamaged(endpointID: endpointID, key: keys[index] ?? "")
            }
            sequences[index] = next
        }
        return sequences
    }
}

// MARK: - Idempotency keys

extension PostgresStore {
    /// `WebhookStore.idempotencyRetentionSeconds` as an SQL interval's seconds.
    private static var keptSeconds: String { String(WebhookStore.idempotencyRetentionSeconds) }

    /// Deletes up to 100 keys older than 7 days that no other session holds. SQLite deletes
    /// them all under its one writer; here two enqueues deleting the same rows in different
    /// orders could deadlock, so each skips the rows another is deleting (the MATERIALIZED CTE
    /// form, docs/POSTGRES.md). A hundred per keyed enqueue outpace the one key each adds.
    private func forgetExpiredKeys() throws {
        try run(
            """
            WITH expired AS MATERIALIZED (
                SELECT key FROM keysat_webhooks_idempotency
                WHERE created_at < now() - $1::bigint * interval '1 second'
                ORDER BY created_at LIMIT 100 FOR UPDATE SKIP LOCKED)
            DELETE FROM keysat_webhooks_idempotency AS k USING expired WHERE k.key = expired.key
            """, [Self.keptSeconds])
    }

    /// The deliveries `key` produced, when it was used for this event type and data in the
    /// last 7 days; `nil` when it is new (or older, and now deleted).
    private func previousEnqueue(key: String, eventType: String, fingerprint: String) throws -> EnqueueResult?
    {
        guard
            let row = try rows(
                """
                SELECT event_type, request_hash, keysat_rfc3339(created_at),
                       created_at < now() - $2::bigint * interval '1 second'
                FROM keysat_webhooks_idempotency WHERE key = $1
                """, [key, Self.keptSeconds]
            ).first
        else { return nil }
        if row[3] == "t" {
            // Expired, and skipped above because another session is deleting it (this waits
            // for that one), or beyond the batch: a new key once gone.
            try run(
                """
                DELETE FROM keysat_webhooks_idempotency
                WHERE key = $1 AND created_at < now() - $2::bigint * interval '1 second'
                """, [key, Self.keptSeconds])
            return nil
        }
        let usedFor = row[0] ?? ""
        if usedFor != eventType || (row[1].map { $0 != fingerprint } ?? false) {
            throw WebhookStore.idempotencyKeyReused(key, at: row[2] ?? "", for: usedFor, by: eventType)
        }
        let deliveries = try rows(
            """
            SELECT e.value ->> 'id', e.value ->> 'endpoint_id'
            FROM keysat_webhooks_idempotency AS k, json_array_elements(k.deliveries_json::json) WITH ORDINALITY AS e
            WHERE k.key = $1 ORDER BY e.ordinality
            """, [key]
        ).map { EnqueueResult.Delivery(id: $0[0] ?? "", endpointID: $0[1] ?? "") }
        return EnqueueResult(eventType: eventType, deliveries: deliveries, replayed: true)
    }

    /// Records `key` for these deliveries; `false` when another session holds it (inserted
    /// it and committed, having waited for that session to end if it had not).
    private func keepKey(
        _ key: String, eventType: String, fingerprint: String, deliveries: [EnqueueResult.Delivery]
    ) throws -> Bool {
        let list = JSONText.array(
            deliveries.map {
                JSONText.object([
                    ("id", JSONText.string($0.id)), ("endpoint_id", JSONText.string($0.endpointID)),
                ])
            })
        return try run(
            """
            INSERT INTO keysat_webhooks_idempotency (key, event_type, deliveries_json, created_at, request_hash)
            VALUES ($1, $2, $3, now(), $4) ON CONFLICT (key) DO NOTHING
            """, [key, eventType, list, fingerprint]) == 1
    }
}

// MARK: - Event types

extension PostgresStore {
    /// Every known event type with where it is known from, sorted by name: Keysat's
    /// (`EventType.catalogue`), declared, or subscribed to by name by an endpoint, active or
    /// not (`WebhookStore.knownEventTypes`).
    public func knownEventTypes() throws -> [(name: String, source: WebhookStore.EventTypeSource)] {
        var known: [String: WebhookStore.EventTypeSource] = [:]
        for name in EventType.catalogue { known[name] = .keysat }
        for row in try rows("SELECT name FROM keysat_webhooks_event_types") {
            if let name = row[0], known[name] == nil { known[name] = .declared }
        }
        for row in try rows("SELECT event_types FROM webhook_endpoints") {
            for name in JSONStrings.topLevel(row[0] ?? "") ?? []
            where name != "*" && !EventSubscription.isPattern(name) && known[name] == nil {
                known[name] = .subscribed
            }
        }
        return known.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Whether `name` is known: Keysat's (no query), declared, or subscribed to by name or by a
    /// pattern (one query for both: keysat-enqueue asks before every event of another type).
    public func isKnownEventType(_ name: String) throws -> Bool {
        if EventType.catalogue.contains(name) { return true }
        let found = try rows(
            """
            SELECT true, NULL FROM keysat_webhooks_event_types WHERE name = $1
            UNION ALL SELECT false, event_types FROM webhook_endpoints
            """, [name])
        return found.contains { row in
            row[0] == "t"
                || (JSONStrings.topLevel(row[1] ?? "") ?? []).contains {
                    $0 == name || (EventSubscription.isPattern($0) && EventSubscription.matches($0, name))
                }
        }
    }

    /// Declares an event type; `false` when it already was known (or another session
    /// declared it meanwhile).
    @discardableResult
    public func declareEventType(_ name: String) throws -> Bool {
        try EventType.validate(name)
        if try isKnownEventType(name) { return false }
        return try run(
            """
            INSERT INTO keysat_webhooks_event_types (name, declared_at) VALUES ($1, now())
            ON CONFLICT (name) DO NOTHING
            """, [name]) == 1
    }

    /// Forgets a declared event type; `false` when it was not declared.
    @discardableResult
    public func forgetEventType(_ name: String) throws -> Bool {
        try run("DELETE FROM keysat_webhooks_event_types WHERE name = $1", [name]) > 0
    }
}
