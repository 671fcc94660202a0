public import KeysatCore
public import KeysatStore

/// The operator's view of deliveries on PostgreSQL: listing, showing, re-queueing, testing.
///
/// The same answers and errors as `WebhookStore`'s (the messages and rules shared are
/// `WebhookStore`'s own statics); what differs is that rows may be under a run's claim. A row
/// under a live lease is being sent right now: re-queueing it keeps the claim (another run
/// would send it a second time meanwhile), and the claiming run's outcome is then written only
/// if the attempt count it read still stands (an operator's re-queue wins, as on SQLite).
extension PostgresStore: DeliveryInspection {
    /// Where `deliveries` and `replay` read a delivery's columns, times as the programs write them.
    static func recordColumns(payload: Bool) -> String {
        "d.id, d.endpoint_id, d.event_type, \(payload ? "d.payload_json" : "NULL"), d.attempt_count, "
            + "keysat_rfc3339(d.next_attempt_at), d.last_status_code, d.last_error, "
            + "keysat_rfc3339(d.delivered_at), keysat_rfc3339(d.created_at), "
            + "d.keysat_webhooks_ordering_key, d.keysat_webhooks_sequence"
    }

    static func record(_ row: [String?]) -> DeliveryRecord {
        DeliveryRecord(
            id: row[0] ?? "", endpointID: row[1] ?? "", eventType: row[2] ?? "",
            payload: Array((row[3] ?? "").utf8), attemptCount: row[4].flatMap { Int($0) },
            nextAttemptAt: row[5], lastStatusCode: row[6].flatMap { Int($0) }, lastError: row[7],
            deliveredAt: row[8], createdAt: row[9] ?? "", orderingKey: row[10],
            sequence: row[11].flatMap { Int64($0) })
    }

    /// A re-queue: attempt count back to 0, outcome columns cleared, due now. The claim of a
    /// row is cleared only where no run holds it (`unleased`): a run whose lease still runs is
    /// sending the row now, and another run must not send it too before that one's outcome.
    static let requeue = """
        UPDATE webhook_deliveries AS d SET attempt_count = 0, delivered_at = NULL, last_error = NULL,
            last_status_code = NULL, next_attempt_at = now(),
            claim_token = CASE WHEN \(unleased) THEN NULL ELSE d.claim_token END,
            lease_expires_at = CASE WHEN \(unleased) THEN NULL ELSE d.lease_expires_at END,
            claimed_by = CASE WHEN \(unleased) THEN NULL ELSE d.claimed_by END
        """

    /// The one id of `kind` that is `text` or starts with it; the ids are `COLLATE "C"`
    /// (PostgresSchema), so a prefix is a range of the primary key, as on SQLite.
    public func fullID(of kind: WebhookStore.Record, _ text: String) throws -> String {
        if let exact = try value("SELECT id FROM \(kind.table) WHERE id = $1", [text]) { return exact }
        var candidates: [String] = []
        if let (lower, upper) = WebhookStore.prefixRange(text) {
            candidates = try rows(
                "SELECT id FROM \(kind.table) WHERE id > $1 AND id < $2 ORDER BY id LIMIT 6", [lower, upper]
            ).compactMap { $0[0] }
        }
        return try WebhookStore.uniqueID(of: kind, text, candidates: candidates)
    }

    /// Deliveries matching `filter`, newest first; their payloads read only with `payloads`.
    ///
    /// No index is named, unlike SQLite's: the planner walks `(created_at, id)` backwards, or
    /// the partial index of stopped rows for dead ones, or the pending index and sorts a small
    /// backlog, by its statistics (autovacuum analyses this table at 2 % of changes).
    public func deliveries(_ filter: DeliveryFilter, limit: Int, payloads: Bool) throws -> [DeliveryRecord] {
        var parameters: [String?] = []
        let condition = Self.condition(filter, &parameters)
        parameters.append(String(limit))
        return try rows(
            """
            SELECT \(Self.recordColumns(payload: payloads)) FROM webhook_deliveries AS d
            WHERE \(condition) ORDER BY d.created_at DESC, d.id DESC LIMIT $\(parameters.count)
            """, parameters
        ).map(Self.record)
    }

    /// The WHERE clause of `filter` on table `d`, its values appended to `parameters` (`$n`
    /// numbered after those already there). The state's condition is `DeliveryRecord.State`'s,
    /// with the database's clock; times are compared as `timestamptz`.
    static func condition(_ filter: DeliveryFilter, _ parameters: inout [String?]) -> String {
        var conditions = [filter.state.condition("d", now: "now()")]
        func add(_ value: String, _ sql: (String) -> String) {
            parameters.append(value)
            conditions.append(sql("$\(parameters.count)"))
        }
        if let endpointID = filter.endpointID { add(endpointID) { "d.endpoint_id = \($0)" } }
        if let eventType = filter.eventType { add(eventType) { "d.event_type = \($0)" } }
        if let since = filter.since { add(since.rfc3339) { "d.created_at >= \($0)::timestamptz" } }
        if let until = filter.until { add(until.rfc3339) { "d.created_at < \($0)::timestamptz" } }
        return conditions.joined(separator: " AND ")
    }

    /// The delivery with this id.
    /// - Throws: `KeysatError` (data, 65) when there is none.
    public func delivery(id: String) throws -> DeliveryRecord {
        guard
            let row = try rows(
                "SELECT \(Self.recordColumns(payload: true)) FROM webhook_deliveries AS d WHERE d.id = $1",
                [id]
            ).first
        else { throw WebhookStore.noDelivery(id) }
        return Self.record(row)
    }

    /// The attempt history of one delivery, oldest first: only while the delivery exists, as
    /// on SQLite (history left by a deleted row is not shown under its id).
    public func attempts(deliveryID: String) throws -> [AttemptRecord] {
        try rows(
            """
            SELECT a.attempt_number, keysat_rfc3339(a.started_at), a.duration_ms, a.status_code, a.error,
                   a.response_body
            FROM webhook_deliveries AS d JOIN webhook_delivery_attempts AS a ON a.delivery_id = d.id
            WHERE d.id = $1 ORDER BY a.attempt_number, a.id
            """, [deliveryID]
        ).map { row in
            AttemptRecord(
                attemptNumber: row[0].flatMap { Int($0) } ?? 0, startedAt: row[1] ?? "",
                durationMS: row[2].flatMap { Int($0) } ?? 0, statusCode: row[3].flatMap { Int($0) },
                error: row[4],
                responseBody: row[5])
        }
    }

    /// Re-queues deliveries (see `requeue`); every one must exist, and delivered ones need
    /// `force`. The rows are locked while they are checked, in id order (two operators' retries
    /// lock alike), so that a run's outcome cannot deliver one between the check and the
    /// re-queue, as SQLite's write transaction ensures there.
    /// - Returns: how many were re-queued.
    /// - Throws: `KeysatError` (data) for an unknown id, or delivered ones without `force`;
    ///   nothing is changed then.
    public func retry(ids: [String], force: Bool) throws -> Int {
        let list = PostgresArray.literal(ids)
        return try transaction {
            var delivered: [String: Bool] = [:]
            var erased: Set<String> = []
            for row in try rows(
                """
                SELECT id, delivered_at IS NOT NULL, \(PayloadErasure.condition("")) FROM webhook_deliveries
                WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE
                """, [list])
            {
                delivered[row[0] ?? ""] = row[1] == "t"
                if row[2] == "t" { erased.insert(row[0] ?? "") }
            }
            var arrived: [String] = []
            for id in ids {
                guard let state = delivered[id] else { throw WebhookStore.noDelivery(id) }
                if state { arrived.append(id) }
            }
            let gone = ids.filter { erased.contains($0) }
            if !gone.isEmpty { throw PayloadErasure.refusal(gone) }
            if !arrived.isEmpty && !force {
                throw KeysatError(
                    .data,
                    "\(arrived.count) of these deliveries already arrived (\(arrived.prefix(3).joined(separator: ", "))"
                        + "\(arrived.count > 3 ? ", …" : "")); pass --force to send them again")
            }
            try run(Self.requeue + " WHERE d.id = ANY($1::text[])", [list])
            return Set(ids).count
        }
    }

    /// The ids of the finished deliveries `filter` selects, oldest first, but those whose
    /// payload was erased: what `replay` would re-queue.
    public func replayable(_ filter: DeliveryFilter) throws -> [String] {
        var parameters: [String?] = []
        let condition = Self.condition(try WebhookStore.replayScope(filter), &parameters)
        return try rows(
            """
            SELECT d.id FROM webhook_deliveries AS d WHERE \(condition) AND NOT \(PayloadErasure.condition())
            ORDER BY d.created_at, d.id
            """,
            parameters
        ).compactMap { $0[0] }
    }

    /// Re-queues, in one statement, the finished deliveries `filter` selects (but erased ones,
    /// which cannot be sent again). A row that a run
    /// changes meanwhile is judged on its new version (READ COMMITTED re-reads a row it waited
    /// for), so a row re-queued by someone else is not counted twice.
    /// - Throws: `KeysatError` (usage) when the filter's state is not a finished one.
    public func replay(_ filter: DeliveryFilter) throws -> Int {
        var parameters: [String?] = []
        let condition = Self.condition(try WebhookStore.replayScope(filter), &parameters)
        return try run(Self.requeue + " WHERE \(condition) AND NOT \(PayloadErasure.condition())", parameters)
    }

    /// How many of the finished deliveries `filter` selects have an erased payload: what
    /// `replay` leaves out.
    public func erasedCount(_ filter: DeliveryFilter) throws -> Int {
        var parameters: [String?] = []
        let condition = Self.condition(try WebhookStore.replayScope(filter), &parameters)
        return Int(
            try value(
                "SELECT count(*) FROM webhook_deliveries AS d WHERE \(condition) AND \(PayloadErasure.condition())",
                parameters) ?? "") ?? 0
    }

    /// Endpoint ids among `ids`' deliveries whose endpoint is disabled or gone: re-queued
    /// deliveries to them would be dead-lettered again.
    public func inactiveEndpoints(forDeliveries ids: [String]) throws -> Set<String> {
        Set(
            try rows(
                """
                SELECT DISTINCT d.endpoint_id FROM webhook_deliveries AS d
                LEFT JOIN webhook_endpoints AS e ON e.id = d.endpoint_id
                WHERE d.id = ANY($1::text[]) AND NOT coalesce(e.active = 1, false)
                """, [PostgresArray.literal(ids)]
            ).compactMap { $0[0] })
    }
}
