public import KeysatCore

/// The one type through which the tools reach their database; all SQL lives behind it.
///
/// Opening it applies pending migrations. Time and randomness come from the caller, so tests
/// control them. Not `Sendable`: it owns one SQLite connection.
public final class WebhookStore {
    public let database: Database
    let clock: any TimeSource
    /// When this process last dropped old per-minute attempt summaries (`pruneAttemptMinutes`).
    var lastMinutesPrune = Timestamp(microseconds: 0)
    /// Whether opening it adopted Keysat's own tables, made by Keysat before this project ever
    /// opened the file (the first `init` on a Keysat database).
    public private(set) var adoptedKeysatTables = false
    /// The schema version, when a newer keysat-webhooks wrote it and this store was opened
    /// read-only (which may read it; writing is refused).
    public private(set) var newerSchema: Int?
    /// The schema steps `repairSchema` recorded.
    public private(set) var repairedSchemaSteps: [Int] = []

    /// Opens the store at `path`.
    ///
    /// - Parameters:
    ///   - path: the database file.
    ///   - create: create the file (mode 0600) when it is missing; otherwise a missing file
    ///     is an error telling to run `keysat-webhooks init`.
    ///   - busyTimeoutMS: how long to wait for another process's write lock.
    ///   - clock: where "now" comes from.
    ///   - readOnly: open for reading only: no migration runs, and a schema older than this
    ///     version's is an error asking for `keysat-webhooks init`.
    ///   - repairSchema: first record the schema steps whose changes are there but whose rows
    ///     are missing (`init --repair`); `repairedSchemaSteps` says which.
    public init(
        path: String, create: Bool = false, readOnly: Bool = false, busyTimeoutMS: Int = 5000,
        clock: any TimeSource = SystemClock(), repairSchema: Bool = false
    ) throws {
        database = try Database(
            path: path, mode: readOnly ? .readOnly : create ? .create : .existing,
            busyTimeoutMS: busyTimeoutMS)
        self.clock = clock
        if readOnly {
            // A newer schema is read (every step only adds, so what this version reads is
            // there); writing to it is refused (`Migrations.newer`).
            let version = (try? Migrations.currentVersion(database)) ?? 0
            if version > Migrations.latest { newerSchema = version }
            guard version >= Migrations.latest else {
                if let problem = try? SchemaCheck.problem(in: database) { throw KeysatError(.data, problem) }
                throw KeysatError(
                    .data,
                    "database \(path) has schema version \(version), older than this version's \(Migrations.latest): its owner must run 'keysat-webhooks init'",
                    errno: nil)
            }
        } else if repairSchema {
            repairedSchemaSteps = try Migrations.repair(database, now: clock.now())
        } else {
            adoptedKeysatTables = try Migrations.migrate(database, now: clock.now())
        }
    }

    /// The schema version this database has reached.
    public func schemaVersion() throws -> Int { try Migrations.currentVersion(database) }

    /// The schema version this build knows.
    public static var knownSchemaVersion: Int { Migrations.latest }

    /// What is wrong with the schema, one line saying how to repair it, or `nil`: read by
    /// `init`, which reads the whole schema (other commands only when something failed).
    public func schemaProblem() throws -> String? { try SchemaCheck.problem(in: database) }

    /// Runs `body` in one write transaction.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try database.writeTransaction(body)
    }
}

// MARK: - Enqueue

/// What `enqueue` wrote, or found already written for the same idempotency key.
public struct EnqueueResult: Sendable, Equatable {
    public struct Delivery: Sendable, Equatable {
        public var id: String
        public var endpointID: String

        public init(id: String, endpointID: String) {
            self.id = id
            self.endpointID = endpointID
        }
    }
    public var eventType: String
    public var deliveries: [Delivery]
    /// `true` when the idempotency key had been used before and nothing was written.
    public var replayed: Bool

    public init(eventType: String, deliveries: [Delivery], replayed: Bool) {
        self.eventType = eventType
        self.deliveries = deliveries
        self.replayed = replayed
    }
}

extension WebhookStore {
    /// How long idempotency keys are remembered.
    public static let idempotencyRetentionSeconds: Int64 = 7 * 86_400

    /// Writes one pending delivery per active endpoint subscribed to `eventType`, all in one
    /// transaction, each with the same envelope around `data`.
    ///
    /// - Parameters:
    ///   - eventType: a validated event type.
    ///   - data: bytes already validated as one JSON value.
    ///   - idempotencyKey: when given and seen before with the same event type and data,
    ///     nothing is written and the deliveries it produced then are returned.
    ///   - generator: the source of delivery ids.
    ///   - orderingKey: the deliveries' ordering key (`keysat-enqueue --ordering-key`, already
    ///     checked by `OrderingKey.validate`), which wins over the one an endpoint's
    ///     `--order-by` derives.
    /// - Throws: `KeysatError` `data` (65) when the key was used for another event type or
    ///   other data, naming that event type: answering with its ids would drop this event.
    public func enqueue(
        eventType: String, data: [UInt8], idempotencyKey: String?, orderingKey: String?,
        using generator: inout some RandomNumberGenerator
    ) throws -> EnqueueResult {
        try database.writeTransaction {
            let now = clock.now()
            let fingerprint = idempotencyKey.map { _ in Self.fingerprint(eventType: eventType, data: data) }
            if let key = idempotencyKey, let fingerprint {
                try database.prepare("DELETE FROM keysat_webhooks_idempotency WHERE created_at < ?")
                    .run([.text(now.adding(seconds: -Self.idempotencyRetentionSeconds).rfc3339)])
                if let previous = try previousEnqueue(
                    key: key, eventType: eventType, fingerprint: fingerprint)
                {
                    return previous
                }
            }
            let written = try writeEvent(
                eventType: eventType, data: data, at: now, excluding: nil, orderingKey: orderingKey,
                derivesKeys: true, using: &generator)
            if let key = idempotencyKey {
                let list = JSONText.array(
                    written.map {
                        JSONText.object([
                            ("id", JSONText.string($0.id)), ("endpoint_id", JSONText.string($0.endpointID)),
                        ])
                    })
                try database.prepare(
                    """
                    INSERT INTO keysat_webhooks_idempotency (key, event_type, deliveries_json, created_at, request_hash)
                    VALUES (?, ?, ?, ?, ?)
                    """
                ).run([.text(key), .text(eventType), .text(list), .text(now.rfc3339), .optional(fingerprint)])
            }
            return EnqueueResult(eventType: eventType, deliveries: written, replayed: false)
        }
    }

    /// The SQL condition "the endpoint row subscribes to the event type `?1`":
    /// `EventSubscription.matches` said in SQL over its `event_types` array (a name, `*` outside
    /// the `webhook.` namespace, or a `PREFIX.*` pattern), so that keysat-enqueue still asks
    /// one query. Comparisons are binary, as Swift's.
    static let subscribes = """
        json_valid(event_types) AND EXISTS (SELECT 1 FROM json_each(webhook_endpoints.event_types)
            WHERE value = ?1
               OR (value = '*' AND substr(?1, 1, \(EventSubscription.operationalPrefix.utf8.count))
                                   <> '\(EventSubscription.operationalPrefix)')
               OR \(patternMatches))
        """

    /// The SQL condition "the endpoint row, disabled, was disabled by a run for failing" (and is
    /// probed: `takeProbes`): a seek on the health table's key, made only for disabled rows.
    static let receivesWhileDisabled = """
        EXISTS (SELECT 1 FROM keysat_webhooks_endpoint_health AS h
                WHERE h.endpoint_id = webhook_endpoints.id AND h.disabled_failing_since IS NOT NULL)
        """

    /// The SQL condition "`value`, an entry of `event_types`, is a `PREFIX.*` pattern that
    /// matches the event type `?1`" (`EventSubscription.matches`).
    static let patternMatches = """
        (substr(value, -2) = '.*' AND length(?1) >= length(value)
         AND substr(?1, 1, length(value) - 1) = substr(value, 1, length(value) - 1))
        """

    /// Writes one pending delivery of `eventType` per active endpoint subscribed to it, but
    /// `excluding` (the endpoint an operational event is about), each with the same envelope
    /// at `now` around `data`, in the caller's transaction: keysat-enqueue's events and
    /// keysat-deliver's own (`OperationalEvent`) are written by this one function. An endpoint
    /// a run disabled for failing (`receivesWhileDisabled`) gets its delivery too: the next run
    /// dead-letters it by Keysat's rule, and its recovery re-queues it, so that no event of
    /// the outage is lost. An endpoint whose filter the envelope does not match gets none
    /// (`EventFilter.receivers`; the filters come with the ids, in the same query).
    func writeEvent(
        eventType: String, data: [UInt8], at now: Timestamp, excluding: String?, orderingKey: String? = nil,
        derivesKeys: Bool = false, using generator: inout some RandomNumberGenerator
    ) throws -> [EnqueueResult.Delivery] {
        var filters = EventFilter.Stored()
        var row = 0
        let subscribed = try database.prepare(
            """
            SELECT id, event_filter, order_by FROM webhook_endpoints
            WHERE (\(Self.isActive("")) OR \(Self.receivesWhileDisabled)) AND id IS NOT ?2 AND \(Self.subscribes)
            ORDER BY created_at, id
            """
        ).rows([.text(eventType), .optional(excluding)]) { columns -> (String, String?) in
            defer { row += 1 }
            if let filter = columns.text(1) { filters.add(filter, at: row) }
            return (columns.string(0), columns.text(2))
        }
        let taking = EventFilter.receivers(
            subscribed.map(\.0), filters: filters, eventType: eventType, timestamp: now, data: data)
        // Without filters every subscriber takes the event. Otherwise a linear look-up: a few
        // endpoints, and a Set's generic set-up costs more at start-up than it saves here.
        let endpoints = taking.count == subscribed.count ? subscribed : subscribed.filter { taking.contains($0.0) }
        guard !endpoints.isEmpty else { return [] }
        let payload = Envelope.make(eventType: eventType, timestamp: now, data: data)
        let insert = try database.prepare(
            """
            INSERT INTO webhook_deliveries
                (id, endpoint_id, event_type, payload_json, attempt_count,
                 next_attempt_at, created_at, keysat_webhooks_ordering_key, keysat_webhooks_sequence)
            VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)
            """)
        var written: [EnqueueResult.Delivery] = []
        for (endpointID, orderBy) in endpoints {
            let id = Identifiers.uuid4(using: &generator)
            let key = orderingKey ?? (derivesKeys ? OrderingKey.derive(from: data, stored: orderBy) : nil)
            let sequence = try key.map { try nextSequence(endpointID: endpointID, key: $0) }
            try insert.run([
                .text(id), .text(endpointID), .text(eventType), .bytes(payload),
                .text(now.rfc3339), .text(now.rfc3339), .optional(key), sequence.map { .integer($0) } ?? .null,
            ])
            written.append(.init(id: id, endpointID: endpointID))
        }
        return written
    }

    /// The next sequence number of `key` on `endpointID` (1 for its first delivery), from the
    /// last one given (`keysat_webhooks_key_sequences`), in the caller's write transaction:
    /// SQLite's one writer makes two enqueues take turns, and the counter outlives purges.
    /// - Throws: `keyCounterDamaged` when the counter holds what no number can follow.
    func nextSequence(endpointID: String, key: String) throws -> Int64 {
        let next = try database.prepare(
            """
            INSERT INTO keysat_webhooks_key_sequences (endpoint_id, ordering_key, last) VALUES (?1, ?2, 1)
            ON CONFLICT (endpoint_id, ordering_key) DO UPDATE SET last = last + 1
                WHERE typeof(last) = 'integer' AND last BETWEEN 0 AND \(Self.lastSequence - 1)
            RETURNING last
            """
        ).first([.text(endpointID), .text(key)]) { $0.integer(0) }
        guard let next, let next else { throw Self.keyCounterDamaged(endpointID: endpointID, key: key) }
        return Int64(next)
    }

    /// The largest sequence number; a counter another program set beyond it (or to text, or
    /// below 0) gives none: `last + 1` went on as 1 after text and stayed at the largest
    /// integer (SQLite makes the sum a real), so numbers were given twice.
    public static let lastSequence = Int64.max

    /// The refusal to number a delivery when the key's counter holds what no number can follow,
    /// in the same words on every backend.
    public static func keyCounterDamaged(endpointID: String, key: String) -> KeysatError {
        KeysatError(
            .data,
            "the sequence counter of ordering key '\(key)' on endpoint \(endpointID) (keysat_webhooks_key_sequences.last) is not a whole number from 0 to \(lastSequence - 1): no number can follow it, and nothing was written; repair the row"
        )
    }

    /// What an idempotency key stands for: SHA-256 of the event type, a NUL (which no event
    /// type holds) and the data bytes as given, in lowercase hex. Public for the other
    /// backends: one definition, so that a key means the same on each.
    public static func fingerprint(eventType: String, data: [UInt8]) -> String {
        var hash = SHA256()
        hash.update(eventType.utf8)
        hash.update(CollectionOfOne(0))
        hash.update(data)
        return Identifiers.lowercaseHex(hash.finish())
    }

    /// The refusal of an idempotency key used at `createdAt` for a `usedFor` event (with other
    /// data when `eventType` is the same), in the same words on every backend.
    public static func idempotencyKeyReused(
        _ key: String, at createdAt: String, for usedFor: String, by eventType: String
    ) -> KeysatError {
        let what = usedFor == eventType ? "a \(usedFor) event with other data" : "a \(usedFor) event"
        return KeysatError(
            .data,
            "idempotency key '\(key)' was used at \(createdAt) for \(what); nothing was queued: give this \(eventType) event a key of its own"
        )
    }

    /// The deliveries `key` produced, when it was used for this event type and data; `nil` when
    /// it is new. A key used for another event is refused, as Stripe refuses a key reused with
    /// other parameters; one written before schema step 13 (no fingerprint) is compared by event
    /// type only.
    private func previousEnqueue(key: String, eventType: String, fingerprint: String) throws -> EnqueueResult?
    {
        guard
            let (usedFor, usedFingerprint, createdAt) = try database.prepare(
                "SELECT event_type, request_hash, created_at FROM keysat_webhooks_idempotency WHERE key = ?"
            ).first([.text(key)], { ($0.string(0), $0.text(1), $0.string(2)) })
        else { return nil }
        if usedFor != eventType || (usedFingerprint.map { $0 != fingerprint } ?? false) {
            throw Self.idempotencyKeyReused(key, at: createdAt, for: usedFor, by: eventType)
        }
        let deliveries = try database.prepare(
            """
            SELECT json_extract(value, '$.id'), json_extract(value, '$.endpoint_id')
            FROM keysat_webhooks_idempotency AS k, json_each(k.deliveries_json)
            WHERE k.key = ?
            """
        ).rows([.text(key)]) { EnqueueResult.Delivery(id: $0.string(0), endpointID: $0.string(1)) }
        return EnqueueResult(eventType: eventType, deliveries: deliveries, replayed: true)
    }
}
