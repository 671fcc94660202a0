public import KeysatCore

/// Inspecting and recovering deliveries.
extension WebhookStore {
    /// Deliveries matching `filter`, newest first; their payloads read only with `payloads`.
    public func deliveries(_ filter: DeliveryFilter, limit: Int, payloads: Bool = true) throws -> [DeliveryRecord] {
        let columns = DeliveryRecord.columns(payload: payloads)
        let (condition, values) = filter.sql(now: clock.now())
        let bound = values + [(":limit", .integer(Int64(limit)))]
        if filter.state == .pending || filter.state == .due {
            // A backlog is mostly recent: the newest rows are looked at first, newest first and at
            // most `recentWindow` of them, and the matches among them are the newest of all. Only
            // when there are fewer than `limit` is the whole backlog read from Keysat's pending
            // index and sorted (proportional to the backlog: 120,000 due took 0.3 s).
            let byEndpoint = filter.endpointID != nil
            let recent = try database.prepare(
                """
                SELECT \(columns) FROM (
                    SELECT rowid AS r FROM webhook_deliveries INDEXED BY \(byEndpoint
                        ? "idx_keysat_webhooks_deliveries_endpoint_created WHERE endpoint_id = :endpoint"
                        : "idx_keysat_webhooks_deliveries_created")
                    ORDER BY created_at DESC, id DESC LIMIT :window) AS recent
                JOIN webhook_deliveries AS d ON d.rowid = recent.r
                WHERE \(condition) ORDER BY d.created_at DESC, d.id DESC LIMIT :limit
                """
            ).rows(named: bound + [(":window", .integer(Int64(Self.recentWindow)))]) {
                DeliveryRecord(row: $0)
            }
            if recent.count >= limit { return recent }
        }
        // Dead rows are history that only a purge removes: they are walked newest first from
        // their own index (the planner would read them all from Keysat's pending index, then
        // sort: 0.1 s for 30,000). Other states pick their index by the planner's choice.
        let index = filter.state == .dead ? "INDEXED BY idx_keysat_webhooks_deliveries_stopped_created" : ""
        return try database.prepare(
            """
            SELECT \(columns) FROM webhook_deliveries AS d \(index)
            WHERE \(condition) ORDER BY d.created_at DESC, d.id DESC LIMIT :limit
            """
        ).rows(named: bound) { DeliveryRecord(row: $0) }
    }

    /// How many of the newest rows a listing of pending or due deliveries looks at before it reads
    /// the whole backlog (10,000 rows: about 10 ms).
    static let recentWindow = 10_000

    /// The delivery with this id.
    /// - Throws: `KeysatError` (data, 65) when there is none.
    public func delivery(id: String) throws -> DeliveryRecord {
        let found = try database.prepare(
            "SELECT \(DeliveryRecord.columns) FROM webhook_deliveries AS d WHERE d.id = ?"
        ).first([.text(id)]) { DeliveryRecord(row: $0) }
        guard let found else { throw Self.noDelivery(id) }
        return found
    }

    /// The error for a delivery id that names no row, the same from every backend.
    public static func noDelivery(_ id: String) -> KeysatError {
        KeysatError(.data, "no delivery with id \(JSONText.string(id)) (see 'keysat-webhooks deliveries list')")
    }

    /// The attempt history of one delivery, oldest first.
    public func attempts(deliveryID: String) throws -> [AttemptRecord] {
        try database.prepare(
            """
            SELECT a.attempt_number, a.started_at, a.duration_ms, a.status_code, a.error, a.response_body
            FROM webhook_deliveries AS d JOIN webhook_delivery_attempts AS a ON \(AttemptHistory.of("d", "a"))
            WHERE d.id = ? ORDER BY a.attempt_number, a.id
            """
        ).rows([.text(deliveryID)]) {
            AttemptRecord(
                attemptNumber: $0.integer(0) ?? 0, startedAt: $0.string(1), durationMS: $0.integer(2) ?? 0,
                statusCode: $0.integer(3), error: $0.text(4), responseBody: $0.text(5))
        }
    }

    /// Re-queues deliveries: attempt count back to 0, outcome columns cleared, due now.
    ///
    /// - Parameters:
    ///   - ids: the deliveries; every one must exist.
    ///   - force: also re-send ones already delivered.
    /// - Returns: how many were re-queued.
    /// - Throws: `KeysatError` (data) for an unknown id, or delivered ones without `force`;
    ///   nothing is changed then.
    public func retry(ids: [String], force: Bool) throws -> Int {
        try database.writeTransaction {
            var delivered: [String] = []
            var erased: [String] = []
            // Whether each was delivered, or erased, without reading its payload.
            let state = try database.prepare(
                """
                SELECT delivered_at IS NOT NULL, \(PayloadErasure.condition("")) FROM webhook_deliveries WHERE id = ?
                """)
            for id in ids {
                guard
                    let (arrived, gone) = try state.first(
                        [.text(id)], { ($0.integer(0) == 1, $0.integer(1) == 1) })
                else { throw Self.noDelivery(id) }
                if arrived { delivered.append(id) }
                if gone { erased.append(id) }
            }
            if !erased.isEmpty { throw PayloadErasure.refusal(erased) }
            if !delivered.isEmpty && !force {
                throw KeysatError(
                    .data,
                    "\(delivered.count) of these deliveries already arrived (\(delivered.prefix(3).joined(separator: ", "))"
                        + "\(delivered.count > 3 ? ", …" : "")); pass --force to send them again")
            }
            let requeue = try database.prepare(Self.requeueSQL(now: ":now") + " WHERE id = :id")
            for id in Set(ids) {
                try requeue.run(named: [(":now", .text(clock.now().rfc3339)), (":id", .text(id))])
            }
            return Set(ids).count
        }
    }

    /// The ids of the finished deliveries `filter` selects (its state must be `dead`,
    /// `delivered` or `finished`), oldest first, but those whose payload was erased: what
    /// `replay` would re-queue.
    public func replayable(_ filter: DeliveryFilter) throws -> [String] {
        let (condition, values) = try Self.replayScope(filter).sql(now: clock.now())
        return try database.prepare(
            "SELECT d.id FROM webhook_deliveries AS d WHERE \(condition) AND NOT \(PayloadErasure.condition())"
                + " ORDER BY d.created_at, d.id"
        ).rows(named: values) { $0.string(0) }
    }

    /// Re-queues, in one transaction, the finished deliveries `filter` selects, but those whose
    /// payload was erased (they cannot be sent again).
    /// - Throws: `KeysatError` (usage) when the filter's state is not a finished one.
    public func replay(_ filter: DeliveryFilter) throws -> Int {
        let (condition, values) = try Self.replayScope(filter).sql(now: clock.now())
        return try database.writeTransaction {
            try database.prepare(
                Self.requeueSQL(now: ":now")
                    + " WHERE id IN (SELECT d.id FROM webhook_deliveries AS d WHERE \(condition)"
                    + " AND NOT \(PayloadErasure.condition()))"
            ).run(named: values)
            return database.changes
        }
    }

    /// How many of the finished deliveries `filter` selects have an erased payload: what
    /// `replay` leaves out.
    public func erasedCount(_ filter: DeliveryFilter) throws -> Int {
        let (condition, values) = try Self.replayScope(filter).sql(now: clock.now())
        return try database.prepare(
            "SELECT count(*) FROM webhook_deliveries AS d WHERE \(condition) AND \(PayloadErasure.condition())"
        ).rows(named: values) { $0.integer(0) ?? 0 }.first ?? 0
    }

    /// `filter`, when its state is one `replay` may re-queue (the rule of every backend).
    /// - Throws: `KeysatError` (usage) otherwise.
    public static func replayScope(_ filter: DeliveryFilter) throws -> DeliveryFilter {
        guard [.dead, .delivered, .finished].contains(filter.state) else {
            throw KeysatError(.usage, "only dead or delivered deliveries can be replayed", errno: nil)
        }
        return filter
    }

    static func requeueSQL(now: String) -> String {
        """
        UPDATE webhook_deliveries SET attempt_count = 0, delivered_at = NULL, last_error = NULL,
            last_status_code = NULL, next_attempt_at = \(now)
        """
    }

    /// Endpoint ids among `ids` whose endpoint is disabled or gone: re-queued deliveries to
    /// them would be dead-lettered again.
    public func inactiveEndpoints(forDeliveries ids: [String]) throws -> Set<String> {
        var result: Set<String> = []
        let statement = try database.prepare(
            """
            SELECT d.endpoint_id FROM webhook_deliveries AS d
            LEFT JOIN webhook_endpoints AS e ON e.id = d.endpoint_id
            WHERE d.id = ? AND NOT \(Self.isActive("e"))
            """)
        for id in ids {
            if let endpoint = try statement.first([.text(id)], { $0.string(0) }) { result.insert(endpoint) }
        }
        return result
    }
}
