import KeysatCore

/// SQLite's part of `keysat-webhooks copy`: reading a whole queue within one read transaction,
/// every value checked (`CopiedColumns`), and writing one within one write transaction.
extension WebhookStore: QueueExport, QueueImport {
    public func exporting<Value>(_ body: (any QueueReader) throws -> Value) throws -> Value {
        // A deferred BEGIN: the snapshot is taken at the first read and held to COMMIT (WAL),
        // so every table is read as of one moment while writers go on.
        try database.execute("BEGIN")
        do {
            let value = try body(SQLiteQueueReader(database: database))
            try database.execute("COMMIT")
            return value
        } catch {
            try? database.execute("ROLLBACK")
            throw error
        }
    }

    public func importing<Value>(_ body: (any QueueWriter) throws -> Value) throws -> Value {
        try database.writeTransaction { try body(SQLiteQueueWriter(database: database)) }
    }
}

/// Rows per table, in one statement.
private func tableCounts(_ database: Database) throws -> QueueTableCounts {
    let tables = QueueTable.allCases
    let sql = "SELECT " + tables.map { "(SELECT count(*) FROM \($0.name))" }.joined(separator: ", ")
    let counts =
        try database.prepare(sql).first { row in tables.indices.map { row.integer(Int32($0)) ?? 0 } } ?? []
    return Dictionary(uniqueKeysWithValues: zip(tables, counts))
}

// MARK: - Reading

final class SQLiteQueueReader: QueueReader {
    let database: Database

    init(database: Database) { self.database = database }

    func counts() throws -> QueueTableCounts { try tableCounts(database) }

    func liveLeases() throws -> Int { 0 }

    func read(_ table: QueueTable, limit: CopyBatchLimit, _ body: (CopyBatch) throws -> Void) throws {
        switch table {
        case .endpoints: try readEndpoints(table, limit: limit, body)
        case .deliveries: try readDeliveries(table, limit: limit, body)
        case .attempts: try readAttempts(table, limit: limit, body)
        case .idempotencyKeys: try readIdempotencyKeys(table, limit: limit, body)
        case .eventTypes: try readEventTypes(table, limit: limit, body)
        case .endpointHealth: try readEndpointHealth(table, limit: limit, body)
        case .attemptMinutes: try readAttemptMinutes(table, limit: limit, body)
        case .keySequences: try readKeySequences(table, limit: limit, body)
        }
    }

    private func readEndpoints(_ table: QueueTable, limit: CopyBatchLimit, _ body: (CopyBatch) throws -> Void)
        throws
    {
        var batcher = CopyBatcher(limit, CopyBatch.endpoints)
        try each(
            """
            SELECT rowid, id, url, secret, event_types, active, description, created_at, updated_at, previous_secret,
                   previous_secret_expires_at, disabled_reason, disabled_at, ordered, retry_schedule, retry_jitter,
                   custom_headers, client_cert, client_key,
                   signing_key, previous_signing_key, keysat_signature, rate_limit, order_by, order_on_dead,
                   event_filter
            FROM webhook_endpoints ORDER BY rowid
            """, table
        ) { c in
            var endpoint = CopiedEndpoint(
                id: try c.key(1, "id"), url: try c.text(2, "url"), secret: try c.text(3, "secret"),
                eventTypes: try c.text(4, "event_types"), active: try c.integer(5, "active"),
                description: try c.text(6, "description"), createdAt: try c.time(7, "created_at"),
                updatedAt: try c.time(8, "updated_at"),
                previousSecret: try c.optionalText(9, "previous_secret"),
                previousSecretExpiresAt: try c.optionalTime(10, "previous_secret_expires_at"),
                disabledReason: try c.optionalText(11, "disabled_reason"),
                disabledAt: try c.optionalTime(12, "disabled_at"), ordered: try c.integer(13, "ordered"))
            endpoint.retrySchedule = try c.optionalText(14, "retry_schedule")
            endpoint.retryJitter = try c.optionalInteger(15, "retry_jitter")
            endpoint.customHeaders = try c.optionalText(16, "custom_headers")
            endpoint.clientCert = try c.optionalText(17, "client_cert")
            endpoint.clientKey = try c.optionalText(18, "client_key")
            endpoint.signingKey = try c.optionalText(19, "signing_key")
            endpoint.previousSigningKey = try c.optionalText(20, "previous_signing_key")
            endpoint.keysatSignature = try c.optionalInteger(21, "keysat_signature")
            endpoint.rateLimit = try c.optionalText(22, "rate_limit")
            endpoint.orderBy = try c.optionalText(23, "order_by")
            endpoint.orderOnDead = try c.optionalText(24, "order_on_dead")
            endpoint.eventFilter = try c.optionalText(25, "event_filter")
            try batcher.add(
                endpoint, size: 256 + endpoint.url.utf8.count + endpoint.eventTypes.utf8.count, body)
        }
        try batcher.finish(body)
    }

    private func readDeliveries(
        _ table: QueueTable, limit: CopyBatchLimit, _ body: (CopyBatch) throws -> Void
    ) throws {
        var batcher = CopyBatcher(limit, CopyBatch.deliveries)
        try each(
            """
            SELECT rowid, id, endpoint_id, event_type, payload_json, attempt_count, next_attempt_at, last_status_code,
                   last_error, delivered_at, created_at, keysat_webhooks_history,
                   keysat_webhooks_ordering_key, keysat_webhooks_sequence
            FROM webhook_deliveries ORDER BY rowid
            """, table
        ) { c in
            // A pending row is judged first as a run judges it (issue 20), before any other
            // read of its columns converts them.
            if c.row.isNull(9), !c.row.isNull(6),
                let defect = DeliveryRowCheck.defect(
                    c.row, DeliveryRowCheck.Columns(id: 1, attemptCount: 5, nextAttemptAt: 6))
            {
                throw c.defect("next_attempt_at", defect.reason)
            }
            var delivery = CopiedDelivery(
                id: try c.deliveryID(1, "id"), endpointID: try c.key(2, "endpoint_id"),
                eventType: try c.text(3, "event_type"), payload: try c.text(4, "payload_json"),
                attemptCount: try c.integer(
                    5, "attempt_count", in: 0...DeliveryRowCheck.maximumAttemptCount),
                nextAttemptAt: try c.optionalTime(6, "next_attempt_at"),
                lastStatusCode: try c.optionalInteger(7, "last_status_code"),
                lastError: try c.optionalText(8, "last_error"),
                deliveredAt: try c.optionalTime(9, "delivered_at"),
                createdAt: try c.time(10, "created_at"),
                history: try c.optionalRowNumber(11, "keysat_webhooks_history"))
            delivery.orderingKey = try c.optionalText(12, "keysat_webhooks_ordering_key")
            delivery.sequence = try c.optionalRowNumber(13, "keysat_webhooks_sequence")
            try batcher.add(
                delivery, size: 200 + delivery.payload.utf8.count + (delivery.lastError?.utf8.count ?? 0),
                body)
        }
        try batcher.finish(body)
    }

    private func readAttempts(_ table: QueueTable, limit: CopyBatchLimit, _ body: (CopyBatch) throws -> Void)
        throws
    {
        var batcher = CopyBatcher(limit, CopyBatch.attempts)
        try each(
            """
            SELECT id, delivery_id, attempt_number, started_at, duration_ms, status_code, error, response_body, history_id
            FROM webhook_delivery_attempts ORDER BY id
            """, table
        ) { c in
            guard let id = try c.optionalRowNumber(0, "id") else {
                throw c.defect("id", "its id is NULL")
            }
            let attempt = CopiedAttempt(
                id: id, deliveryID: try c.key(1, "delivery_id"),
                attemptNumber: try c.integer(2, "attempt_number"),
                startedAt: try c.time(3, "started_at"), durationMS: try c.integer(4, "duration_ms"),
                statusCode: try c.optionalInteger(5, "status_code"),
                error: try c.optionalText(6, "error"),
                responseBody: try c.optionalText(7, "response_body"),
                history: try c.optionalRowNumber(8, "history_id"))
            try batcher.add(
                attempt,
                size: 100 + (attempt.responseBody?.utf8.count ?? 0) + (attempt.error?.utf8.count ?? 0),
                body)
        }
        try batcher.finish(body)
    }

    private func readIdempotencyKeys(
        _ table: QueueTable, limit: CopyBatchLimit, _ body: (CopyBatch) throws -> Void
    ) throws {
        var batcher = CopyBatcher(limit, CopyBatch.idempotencyKeys)
        try each(
            """
            SELECT rowid, key, event_type, deliveries_json, created_at, request_hash
            FROM keysat_webhooks_idempotency ORDER BY rowid
            """, table
        ) { c in
            let key = CopiedIdempotencyKey(
                key: try c.key(1, "key"), eventType: try c.text(2, "event_type"),
                deliveriesJSON: try c.text(3, "deliveries_json"), createdAt: try c.time(4, "created_at"),
                requestHash: try c.optionalText(5, "request_hash"))
            try batcher.add(key, size: 100 + key.key.utf8.count + key.deliveriesJSON.utf8.count, body)
        }
        try batcher.finish(body)
    }

    private func readEventTypes(
        _ table: QueueTable, limit: CopyBatchLimit, _ body: (CopyBatch) throws -> Void
    ) throws {
        var batcher = CopyBatcher(limit, CopyBatch.eventTypes)
        try each("SELECT name, declared_at FROM keysat_webhooks_event_types ORDER BY name", table, key: 0) {
            c in
            let type = CopiedEventType(
                name: try c.key(0, "name"), declaredAt: try c.time(1, "declared_at"))
            try batcher.add(type, size: 64 + type.name.utf8.count, body)
        }
        try batcher.finish(body)
    }

    private func readEndpointHealth(
        _ table: QueueTable, limit: CopyBatchLimit, _ body: (CopyBatch) throws -> Void
    ) throws {
        var batcher = CopyBatcher(limit, CopyBatch.endpointHealth)
        try each(
            """
            SELECT endpoint_id, last_success_at, last_failure_at, failure_streak,
                   disabled_failing_since, probed_at, streak_reset_at
            FROM keysat_webhooks_endpoint_health ORDER BY endpoint_id
            """, table, key: 0
        ) { c in
            let health = CopiedEndpointHealth(
                endpointID: try c.key(0, "endpoint_id"),
                lastSuccessAt: try c.optionalTime(1, "last_success_at"),
                lastFailureAt: try c.optionalTime(2, "last_failure_at"),
                failureStreak: try c.integer(3, "failure_streak"),
                disabledFailingSince: try c.optionalTime(4, "disabled_failing_since"),
                probedAt: try c.optionalTime(5, "probed_at"), streakResetAt: try c.optionalTime(6, "streak_reset_at"))
            try batcher.add(health, size: 100, body)
        }
        try batcher.finish(body)
    }

    private func readAttemptMinutes(
        _ table: QueueTable, limit: CopyBatchLimit, _ body: (CopyBatch) throws -> Void
    ) throws {
        var batcher = CopyBatcher(limit, CopyBatch.attemptMinutes)
        try each(
            """
            SELECT minute, endpoint_id, attempts, successes
            FROM keysat_webhooks_attempt_minutes ORDER BY minute, endpoint_id
            """, table, key: 1
        ) { c in
            let minute = CopiedAttemptMinute(
                minute: try c.minute(0, "minute"), endpointID: try c.key(1, "endpoint_id"),
                attempts: try c.integer(2, "attempts"), successes: try c.integer(3, "successes"))
            try batcher.add(minute, size: 100, body)
        }
        try batcher.finish(body)
    }

    private func readKeySequences(
        _ table: QueueTable, limit: CopyBatchLimit, _ body: (CopyBatch) throws -> Void
    ) throws {
        var batcher = CopyBatcher(limit, CopyBatch.keySequences)
        try each(
            "SELECT rowid, endpoint_id, ordering_key, last FROM keysat_webhooks_key_sequences ORDER BY rowid", table
        ) { c in
            guard let last = try c.optionalRowNumber(3, "last") else { throw c.defect("last", "its last is NULL") }
            let sequence = CopiedKeySequence(
                endpointID: try c.key(1, "endpoint_id"), orderingKey: try c.key(2, "ordering_key"), last: last)
            try batcher.add(sequence, size: 64 + sequence.orderingKey.utf8.count, body)
        }
        try batcher.finish(body)
    }

    /// Steps through `sql`'s rows one at a time (never all in memory), each named for messages
    /// by its rowid (column 0), or by the key in column `key` of a WITHOUT ROWID table.
    private func each(
        _ sql: String, _ table: QueueTable, key: Int32? = nil, _ body: (CopiedColumns) throws -> Void
    )
        throws
    {
        let statement = try database.prepare(sql)
        statement.bind([])
        let row = Row(statement: statement)
        while try statement.step() {
            let which: String
            if let key {
                which =
                    "row with \(row.typeName(key)) key "
                    + DeliveryRowCheck.described(row.typeName(key), row.rawBytes(key))
            } else {
                which = "rowid \(row.integer(0) ?? 0)"
            }
            try body(CopiedColumns(row: row, table: table, which: which, path: database.path))
        }
        statement.bind([])
    }
}

// MARK: - Writing

final class SQLiteQueueWriter: QueueWriter {
    let database: Database
    private var statements: [QueueTable: Statement] = [:]

    init(database: Database) { self.database = database }

    func counts() throws -> QueueTableCounts { try tableCounts(database) }

    func largestAttemptID() throws -> Int64 {
        let largest = try database.prepare("SELECT coalesce(max(id), 0) FROM webhook_delivery_attempts").first
        {
            $0.integer(0) ?? 0
        }
        return Int64(largest ?? 0)
    }

    func finishWriting() throws {}

    /// The INSERT of `table`'s columns; a row whose key is there already changes nothing, which
    /// `insert` reports.
    private func statement(_ table: QueueTable) throws -> Statement {
        if let statement = statements[table] { return statement }
        let columns: [String]
        switch table {
        case .endpoints:
            columns = [
                "id", "url", "secret", "event_types", "active", "description", "created_at", "updated_at",
                "previous_secret", "previous_secret_expires_at", "disabled_reason", "disabled_at", "ordered",
                "retry_schedule", "retry_jitter", "custom_headers",
                "client_cert", "client_key",
                "signing_key", "previous_signing_key", "keysat_signature", "rate_limit", "order_by", "order_on_dead",
                "event_filter",
            ]
        case .deliveries:
            columns = [
                "id", "endpoint_id", "event_type", "payload_json", "attempt_count", "next_attempt_at",
                "last_status_code",
                "last_error", "delivered_at", "created_at", "keysat_webhooks_history",
                "keysat_webhooks_ordering_key", "keysat_webhooks_sequence",
            ]
        case .attempts:
            columns = [
                "id", "delivery_id", "attempt_number", "started_at", "duration_ms", "status_code", "error",
                "response_body",
                "history_id",
            ]
        case .idempotencyKeys:
            columns = ["key", "event_type", "deliveries_json", "created_at", "request_hash"]
        case .eventTypes: columns = ["name", "declared_at"]
        case .endpointHealth:
            columns = [
                "endpoint_id", "last_success_at", "last_failure_at", "failure_streak", "disabled_failing_since",
                "probed_at", "streak_reset_at",
            ]
        case .attemptMinutes: columns = ["minute", "endpoint_id", "attempts", "successes"]
        case .keySequences: columns = ["endpoint_id", "ordering_key", "last"]
        }
        let statement = try database.prepare(
            "INSERT INTO \(table.name) (\(columns.joined(separator: ", "))) VALUES ("
                + columns.map { _ in "?" }.joined(separator: ", ") + ") ON CONFLICT DO NOTHING")
        statements[table] = statement
        return statement
    }

    private func insert(_ table: QueueTable, key: String, _ values: [SQLValue]) throws {
        try statement(table).run(values)
        guard database.changes == 1 else {
            throw KeysatError(
                .data,
                "cannot copy \(table.name): \(TerminalText.escape(key)) is already in \(database.path): nothing was copied (remove it from one of the two databases, or copy into an empty one)"
            )
        }
    }

    func write(_ batch: CopyBatch) throws {
        switch batch {
        case .endpoints(let rows): try writeEndpoints(rows)
        case .deliveries(let rows): try writeDeliveries(rows)
        case .attempts(let rows): try writeAttempts(rows)
        case .idempotencyKeys(let rows): try writeIdempotencyKeys(rows)
        case .eventTypes(let rows): try writeEventTypes(rows)
        case .endpointHealth(let rows): try writeEndpointHealth(rows)
        case .attemptMinutes(let rows): try writeAttemptMinutes(rows)
        case .keySequences(let rows):
            for k in rows {
                try insert(
                    .keySequences, key: "the numbers of key \(k.orderingKey) of endpoint \(k.endpointID)",
                    [.text(k.endpointID), .text(k.orderingKey), .integer(k.last)])
            }
        }
    }

    private func writeEndpoints(_ rows: [CopiedEndpoint]) throws {
        for e in rows {
            try insert(
                .endpoints, key: "endpoint \(e.id)",
                [
                    .text(e.id), .text(e.url), .text(e.secret), .text(e.eventTypes), integer(e.active),
                    .text(e.description), time(e.createdAt), time(e.updatedAt),
                    .optional(e.previousSecret),
                    time(e.previousSecretExpiresAt), .optional(e.disabledReason), time(e.disabledAt),
                    integer(e.ordered), .optional(e.retrySchedule), integer(e.retryJitter),
                    .optional(e.customHeaders), .optional(e.clientCert), .optional(e.clientKey),
                    .optional(e.signingKey), .optional(e.previousSigningKey), integer(e.keysatSignature),
                    .optional(e.rateLimit), .optional(e.orderBy), .optional(e.orderOnDead), .optional(e.eventFilter),
                ])
        }
    }

    private func writeDeliveries(_ rows: [CopiedDelivery]) throws {
        for d in rows {
            do {
                try insert(
                    .deliveries, key: "delivery \(d.id)",
                    [
                        .text(d.id), .text(d.endpointID), .text(d.eventType),
                        .bytes(Array(d.payload.utf8)),
                        integer(d.attemptCount), time(d.nextAttemptAt), integer(d.lastStatusCode),
                        .optional(d.lastError), time(d.deliveredAt), time(d.createdAt), number(d.history),
                        .optional(d.orderingKey), number(d.sequence),
                    ])
            } catch let error as KeysatError where error.cause == .sqlite(787) {
                // SQLITE_CONSTRAINT_FOREIGNKEY: Keysat's table refers deliveries to their
                // endpoint, which PostgreSQL's does not (a removed endpoint's deliveries stay
                // there until a run dead-letters them).
                throw KeysatError(
                    .data,
                    "cannot copy delivery \(d.id): its endpoint \(d.endpointID) is not in the source, and an SQLite database requires it: nothing was copied (purge or delete that endpoint's deliveries in the source first)",
                    cause: error.cause)
            }
        }
    }

    private func writeAttempts(_ rows: [CopiedAttempt]) throws {
        for a in rows {
            try insert(
                .attempts, key: "attempt \(a.id)",
                [
                    .integer(a.id), .text(a.deliveryID), integer(a.attemptNumber), time(a.startedAt),
                    integer(a.durationMS), integer(a.statusCode), .optional(a.error),
                    .optional(a.responseBody),
                    number(a.history),
                ])
        }
    }

    private func writeIdempotencyKeys(_ rows: [CopiedIdempotencyKey]) throws {
        for k in rows {
            try insert(
                .idempotencyKeys, key: "idempotency key \(k.key)",
                [
                    .text(k.key), .text(k.eventType), .text(k.deliveriesJSON), time(k.createdAt),
                    .optional(k.requestHash),
                ])
        }
    }

    private func writeEventTypes(_ rows: [CopiedEventType]) throws {
        for t in rows {
            try insert(.eventTypes, key: "event type \(t.name)", [.text(t.name), time(t.declaredAt)])
        }
    }

    private func writeEndpointHealth(_ rows: [CopiedEndpointHealth]) throws {
        for h in rows {
            try insert(
                .endpointHealth, key: "the health of endpoint \(h.endpointID)",
                [
                    .text(h.endpointID), time(h.lastSuccessAt), time(h.lastFailureAt),
                    integer(h.failureStreak), time(h.disabledFailingSince), time(h.probedAt), time(h.streakResetAt),
                ])
        }
    }

    private func writeAttemptMinutes(_ rows: [CopiedAttemptMinute]) throws {
        for m in rows {
            // "YYYY-MM-DDTHH:MM", the key `stats` reads.
            let minute = String(m.minute.rfc3339.prefix(16))
            try insert(
                .attemptMinutes, key: "the summary of endpoint \(m.endpointID) at \(minute)",
                [.text(minute), .text(m.endpointID), integer(m.attempts), integer(m.successes)])
        }
    }
}

// Values as the write statements take them.
private func time(_ value: Timestamp?) -> SQLValue { .optional(value?.rfc3339) }
private func integer(_ value: Int?) -> SQLValue { .optional(value) }
private func number(_ value: Int64?) -> SQLValue { value.map(SQLValue.integer) ?? .null }
