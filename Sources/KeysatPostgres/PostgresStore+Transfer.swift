import KeysatCore
public import KeysatStore

/// PostgreSQL's part of `keysat-webhooks copy`: reading a whole queue within one snapshot
/// through cursors, and writing one in one transaction, a batch per statement
/// (`INSERT … SELECT … FROM unnest(…)`).
extension PostgresStore: QueueExport, QueueImport {
    public func exporting<Value>(_ body: (any QueueReader) throws -> Value) throws -> Value {
        try transaction {
            // One snapshot for every table, and no lock taken: runs and enqueues go on.
            try connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return try body(PostgresQueueReader(connection: connection, location: location))
        }
    }

    public func importing<Value>(_ body: (any QueueWriter) throws -> Value) throws -> Value {
        try transaction { try body(PostgresQueueWriter(connection: connection, location: location)) }
    }
}

/// Rows per table, in one statement.
private func tableCounts(_ connection: PostgresConnection) throws -> QueueTableCounts {
    let tables = QueueTable.allCases
    let sql = "SELECT " + tables.map { "(SELECT count(*) FROM \($0.name))" }.joined(separator: ", ")
    let row = try connection.execute(sql).rows.first ?? []
    return Dictionary(uniqueKeysWithValues: zip(tables, row.map { Int($0 ?? "0") ?? 0 }))
}

// MARK: - Reading

final class PostgresQueueReader: QueueReader {
    let connection: PostgresConnection
    let location: String
    /// Rows per FETCH: a delivery's payload may be large, so fewer at a time than a batch holds.
    static let fetchRows = 250

    init(connection: PostgresConnection, location: String) {
        self.connection = connection
        self.location = location
    }

    func counts() throws -> QueueTableCounts { try tableCounts(connection) }

    func liveLeases() throws -> Int {
        let value =
            try connection.execute(
                """
                SELECT count(*) FROM webhook_deliveries
                WHERE lease_expires_at > clock_timestamp() AND delivered_at IS NULL
                """
            ).rows.first?.first ?? nil
        return Int(value ?? "0") ?? 0
    }

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
            SELECT id, id, url, secret, event_types, active, description, keysat_rfc3339(created_at),
                   keysat_rfc3339(updated_at), previous_secret, keysat_rfc3339(previous_secret_expires_at),
                   disabled_reason, keysat_rfc3339(disabled_at), ordered, retry_schedule, retry_jitter,
                   custom_headers, client_cert, client_key,
                   signing_key, previous_signing_key, keysat_signature, rate_limit, order_by, order_on_dead,
                   event_filter
            FROM webhook_endpoints ORDER BY created_at, id
            """, table, naming: "id"
        ) { c in
            var endpoint = CopiedEndpoint(
                id: try c.text(1), url: try c.text(2), secret: try c.text(3), eventTypes: try c.text(4),
                active: try c.integer(5), description: try c.text(6), createdAt: try c.time(7),
                updatedAt: try c.time(8), previousSecret: c.optionalText(9),
                previousSecretExpiresAt: try c.optionalTime(10),
                disabledReason: c.optionalText(11), disabledAt: try c.optionalTime(12),
                ordered: try c.integer(13))
            endpoint.retrySchedule = c.optionalText(14)
            endpoint.retryJitter = try c.optionalInteger(15)
            endpoint.customHeaders = c.optionalText(16)
            endpoint.clientCert = c.optionalText(17)
            endpoint.clientKey = c.optionalText(18)
            endpoint.signingKey = c.optionalText(19)
            endpoint.previousSigningKey = c.optionalText(20)
            endpoint.keysatSignature = try c.optionalInteger(21)
            endpoint.rateLimit = c.optionalText(22)
            endpoint.orderBy = c.optionalText(23)
            endpoint.orderOnDead = c.optionalText(24)
            endpoint.eventFilter = c.optionalText(25)
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
            SELECT seq, id, endpoint_id, event_type, payload_json, attempt_count, keysat_rfc3339(next_attempt_at),
                   last_status_code, last_error, keysat_rfc3339(delivered_at), keysat_rfc3339(created_at),
                   keysat_webhooks_history, keysat_webhooks_ordering_key, keysat_webhooks_sequence
            FROM webhook_deliveries ORDER BY seq
            """, table, naming: "seq"
        ) { c in
            var delivery = CopiedDelivery(
                id: try c.text(1), endpointID: try c.text(2), eventType: try c.text(3),
                payload: try c.text(4),
                attemptCount: try c.integer(5), nextAttemptAt: try c.optionalTime(6),
                lastStatusCode: try c.optionalInteger(7), lastError: c.optionalText(8),
                deliveredAt: try c.optionalTime(9), createdAt: try c.time(10),
                history: try c.optionalRowNumber(11))
            delivery.orderingKey = c.optionalText(12)
            delivery.sequence = try c.optionalRowNumber(13)
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
            SELECT id, id, delivery_id, attempt_number, keysat_rfc3339(started_at), duration_ms, status_code, error,
                   response_body, history_id
            FROM webhook_delivery_attempts ORDER BY id
            """, table, naming: "id"
        ) { c in
            guard let id = try c.optionalRowNumber(1) else { throw c.defect(1, "is NULL") }
            let attempt = CopiedAttempt(
                id: id, deliveryID: try c.text(2), attemptNumber: try c.integer(3),
                startedAt: try c.time(4),
                durationMS: try c.integer(5), statusCode: try c.optionalInteger(6),
                error: c.optionalText(7),
                responseBody: c.optionalText(8), history: try c.optionalRowNumber(9))
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
            SELECT key, key, event_type, deliveries_json, keysat_rfc3339(created_at), request_hash
            FROM keysat_webhooks_idempotency ORDER BY created_at, key
            """, table, naming: "key"
        ) { c in
            let key = CopiedIdempotencyKey(
                key: try c.text(1), eventType: try c.text(2), deliveriesJSON: try c.text(3),
                createdAt: try c.time(4),
                requestHash: c.optionalText(5))
            try batcher.add(key, size: 100 + key.key.utf8.count + key.deliveriesJSON.utf8.count, body)
        }
        try batcher.finish(body)
    }

    private func readEventTypes(
        _ table: QueueTable, limit: CopyBatchLimit, _ body: (CopyBatch) throws -> Void
    ) throws {
        var batcher = CopyBatcher(limit, CopyBatch.eventTypes)
        try each(
            "SELECT name, name, keysat_rfc3339(declared_at) FROM keysat_webhooks_event_types ORDER BY name",
            table, naming: "name"
        ) { c in
            let type = CopiedEventType(name: try c.text(1), declaredAt: try c.time(2))
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
            SELECT endpoint_id, endpoint_id, keysat_rfc3339(last_success_at), keysat_rfc3339(last_failure_at),
                   failure_streak, keysat_rfc3339(disabled_failing_since), keysat_rfc3339(probed_at),
                   keysat_rfc3339(streak_reset_at)
            FROM keysat_webhooks_endpoint_health ORDER BY endpoint_id
            """, table, naming: "endpoint_id"
        ) { c in
            let health = CopiedEndpointHealth(
                endpointID: try c.text(1), lastSuccessAt: try c.optionalTime(2),
                lastFailureAt: try c.optionalTime(3),
                failureStreak: try c.integer(4), disabledFailingSince: try c.optionalTime(5),
                probedAt: try c.optionalTime(6), streakResetAt: try c.optionalTime(7))
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
            SELECT endpoint_id || ' ' || keysat_rfc3339(minute), keysat_rfc3339(minute), endpoint_id, attempts, successes
            FROM keysat_webhooks_attempt_minutes ORDER BY minute, endpoint_id
            """, table, naming: "key"
        ) { c in
            let minute = CopiedAttemptMinute(
                minute: try c.time(1), endpointID: try c.text(2), attempts: try c.integer(3),
                successes: try c.integer(4))
            try batcher.add(minute, size: 100, body)
        }
        try batcher.finish(body)
    }

    private func readKeySequences(
        _ table: QueueTable, limit: CopyBatchLimit, _ body: (CopyBatch) throws -> Void
    ) throws {
        var batcher = CopyBatcher(limit, CopyBatch.keySequences)
        try each(
            """
            SELECT endpoint_id || ' ' || ordering_key, endpoint_id, ordering_key, last
            FROM keysat_webhooks_key_sequences ORDER BY endpoint_id, ordering_key
            """, table, naming: "key"
        ) { c in
            guard let last = try c.optionalRowNumber(3) else { throw c.defect(3, "its last is NULL") }
            let sequence = CopiedKeySequence(endpointID: try c.text(1), orderingKey: try c.text(2), last: last)
            try batcher.add(sequence, size: 64 + sequence.orderingKey.utf8.count, body)
        }
        try batcher.finish(body)
    }

    /// The rows of `sql` through a cursor, `fetchRows` at a time (never all in memory); column
    /// 0 names a row in messages (`naming` says what it is).
    private func each(
        _ sql: String, _ table: QueueTable, naming: String, _ body: (PostgresCopiedRow) throws -> Void
    )
        throws
    {
        try connection.execute("DECLARE keysat_copy NO SCROLL CURSOR FOR " + sql)
        while true {
            let rows = try connection.execute("FETCH \(Self.fetchRows) FROM keysat_copy").rows
            for values in rows {
                try body(
                    PostgresCopiedRow(
                        values: values, table: table, which: "\(naming) \(values[0] ?? "NULL")",
                        location: location))
            }
            if rows.count < Self.fetchRows { break }
        }
        try connection.execute("CLOSE keysat_copy")
    }
}

/// One row read from PostgreSQL for a copy: its values as text, checked as they are converted.
/// PostgreSQL's types hold nothing SQLite cannot, but a time beyond year 9999 has no
/// fixed-width RFC 3339 form, and an integer column's value must fit where it goes.
struct PostgresCopiedRow {
    let values: [String?]
    let table: QueueTable
    let which: String
    let location: String

    func defect(_ index: Int, _ what: String) -> KeysatError {
        KeysatError(
            .data,
            "cannot copy \(table.name) \(which): column \(index) \(what): nothing was copied; fix or delete that row in \(location), then copy again"
        )
    }

    func text(_ index: Int) throws -> String {
        guard let value = values[index] else { throw defect(index, "is NULL") }
        return value
    }

    func optionalText(_ index: Int) -> String? { values[index] }

    func integer(_ index: Int) throws -> Int {
        guard let value = try optionalInteger(index) else { throw defect(index, "is NULL") }
        return value
    }

    func optionalInteger(_ index: Int) throws -> Int? {
        guard let text = values[index] else { return nil }
        guard let value = Int(text) else { throw defect(index, "is not an integer") }
        return value
    }

    func optionalRowNumber(_ index: Int) throws -> Int64? {
        guard let value = try optionalInteger(index) else { return nil }
        guard (1...(1 << 52)).contains(value) else {
            throw defect(index, "(\(value)) is not from 1 to \(1 << 52)")
        }
        return Int64(value)
    }

    func time(_ index: Int) throws -> Timestamp {
        guard let value = try optionalTime(index) else { throw defect(index, "is NULL") }
        return value
    }

    func optionalTime(_ index: Int) throws -> Timestamp? {
        guard let text = values[index] else { return nil }
        guard let time = Timestamp(rfc3339: text), text.utf8.count == 32 else {
            throw defect(index, "(\(text)) is not a time from year 1 to 9999")
        }
        return time
    }
}

// MARK: - Writing

final class PostgresQueueWriter: QueueWriter {
    let connection: PostgresConnection
    let location: String

    init(connection: PostgresConnection, location: String) {
        self.connection = connection
        self.location = location
    }

    func counts() throws -> QueueTableCounts { try tableCounts(connection) }

    func largestAttemptID() throws -> Int64 {
        let value = try connection.execute("SELECT coalesce(max(id), 0) FROM webhook_delivery_attempts").rows
            .first?.first
        return Int64((value ?? "0") ?? "0") ?? 0
    }

    func finishWriting() throws {
        // Attempt ids were written as they were: the identity must go on after the largest,
        // or the next run's attempt would take one of them.
        try connection.execute(
            """
            SELECT setval(s.seq, s.largest)
            FROM (SELECT pg_get_serial_sequence('webhook_delivery_attempts', 'id')::regclass AS seq,
                         (SELECT max(id) FROM webhook_delivery_attempts) AS largest) AS s
            WHERE s.largest IS NOT NULL AND s.largest > coalesce(pg_sequence_last_value(s.seq), 0)
            """)
    }

    /// One column of a batch: its name, its PostgreSQL type, its values in text format.
    private typealias Column = (name: String, type: String, values: [String?])

    /// Writes the rows of `columns` in their order with one statement; a row whose key (any
    /// unique constraint) is there already is not written, and is an error naming it.
    private func insert(
        _ table: QueueTable, _ columns: [Column], returning: String, keys: [String], what: String
    )
        throws
    {
        let names = columns.map { "\"\($0.name)\"" }.joined(separator: ", ")
        let arrays = columns.indices.map { "$\($0 + 1)::\(columns[$0].type)[]" }.joined(separator: ", ")
        let result = try connection.execute(
            """
            INSERT INTO \(table.name) (\(names))
            SELECT \(names) FROM unnest(\(arrays)) WITH ORDINALITY AS u(\(names), keysat_copy_order)
            ORDER BY keysat_copy_order
            ON CONFLICT DO NOTHING
            RETURNING \(returning)
            """, columns.map { PostgresArray.literal($0.values) })
        guard result.rows.count == keys.count else {
            let written = Set(result.rows.compactMap { $0.first ?? nil })
            let taken = keys.first { !written.contains($0) } ?? "a row"
            throw KeysatError(
                .data,
                "cannot copy \(table.name): \(what) \(TerminalText.escape(taken)) is already in \(location): nothing was copied (remove it from one of the two databases, or copy into an empty one)"
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
            try insert(
                .keySequences,
                [
                    ("endpoint_id", "text", rows.map(\.endpointID)), ("ordering_key", "text", rows.map(\.orderingKey)),
                    ("last", "bigint", numbers(rows.map(\.last))),
                ], returning: "endpoint_id || ' ' || ordering_key",
                keys: rows.map { "\($0.endpointID) \($0.orderingKey)" }, what: "the numbers of")
        }
    }

    private func writeEndpoints(_ rows: [CopiedEndpoint]) throws {
        try insert(
            .endpoints,
            [
                ("id", "text", rows.map(\.id)), ("url", "text", rows.map(\.url)),
                ("secret", "text", rows.map(\.secret)),
                ("event_types", "text", rows.map(\.eventTypes)),
                ("active", "integer", integers(rows.map(\.active))),
                ("description", "text", rows.map(\.description)),
                ("created_at", "timestamptz", times(rows.map(\.createdAt))),
                ("updated_at", "timestamptz", times(rows.map(\.updatedAt))),
                ("previous_secret", "text", rows.map(\.previousSecret)),
                ("previous_secret_expires_at", "timestamptz", times(rows.map(\.previousSecretExpiresAt))),
                ("disabled_reason", "text", rows.map(\.disabledReason)),
                ("disabled_at", "timestamptz", times(rows.map(\.disabledAt))),
                ("ordered", "integer", integers(rows.map(\.ordered))),
                ("retry_schedule", "text", rows.map(\.retrySchedule)),
                ("retry_jitter", "integer", integers(rows.map(\.retryJitter))),
                ("custom_headers", "text", rows.map(\.customHeaders)),
                ("client_cert", "text", rows.map(\.clientCert)), ("client_key", "text", rows.map(\.clientKey)),
                ("signing_key", "text", rows.map(\.signingKey)),
                ("previous_signing_key", "text", rows.map(\.previousSigningKey)),
                ("keysat_signature", "integer", integers(rows.map(\.keysatSignature))),
                ("rate_limit", "text", rows.map(\.rateLimit)),
                ("order_by", "text", rows.map(\.orderBy)), ("order_on_dead", "text", rows.map(\.orderOnDead)),
                ("event_filter", "text", rows.map(\.eventFilter)),
            ], returning: "id", keys: rows.map(\.id), what: "endpoint")
    }

    private func writeDeliveries(_ rows: [CopiedDelivery]) throws {
        // No seq: the identity numbers the rows in the order given, the source's.
        try insert(
            .deliveries,
            [
                ("id", "text", rows.map(\.id)), ("endpoint_id", "text", rows.map(\.endpointID)),
                ("event_type", "text", rows.map(\.eventType)),
                ("payload_json", "text", rows.map(\.payload)),
                ("attempt_count", "integer", integers(rows.map(\.attemptCount))),
                ("next_attempt_at", "timestamptz", times(rows.map(\.nextAttemptAt))),
                ("last_status_code", "integer", integers(rows.map(\.lastStatusCode))),
                ("last_error", "text", rows.map(\.lastError)),
                ("delivered_at", "timestamptz", times(rows.map(\.deliveredAt))),
                ("created_at", "timestamptz", times(rows.map(\.createdAt))),
                ("keysat_webhooks_history", "bigint", numbers(rows.map(\.history))),
                ("keysat_webhooks_ordering_key", "text", rows.map(\.orderingKey)),
                ("keysat_webhooks_sequence", "bigint", numbers(rows.map(\.sequence))),
            ], returning: "id", keys: rows.map(\.id), what: "delivery")
    }

    private func writeAttempts(_ rows: [CopiedAttempt]) throws {
        try insert(
            .attempts,
            [
                ("id", "bigint", numbers(rows.map(\.id))),
                ("delivery_id", "text", rows.map(\.deliveryID)),
                ("attempt_number", "integer", integers(rows.map(\.attemptNumber))),
                ("started_at", "timestamptz", times(rows.map(\.startedAt))),
                ("duration_ms", "integer", integers(rows.map(\.durationMS))),
                ("status_code", "integer", integers(rows.map(\.statusCode))),
                ("error", "text", rows.map(\.error)),
                ("response_body", "text", rows.map(\.responseBody)),
                ("history_id", "bigint", numbers(rows.map(\.history))),
            ], returning: "id::text", keys: rows.map { String($0.id) }, what: "attempt")
    }

    private func writeIdempotencyKeys(_ rows: [CopiedIdempotencyKey]) throws {
        try insert(
            .idempotencyKeys,
            [
                ("key", "text", rows.map(\.key)), ("event_type", "text", rows.map(\.eventType)),
                ("deliveries_json", "text", rows.map(\.deliveriesJSON)),
                ("created_at", "timestamptz", times(rows.map(\.createdAt))),
                ("request_hash", "text", rows.map(\.requestHash)),
            ], returning: "key", keys: rows.map(\.key), what: "idempotency key")
    }

    private func writeEventTypes(_ rows: [CopiedEventType]) throws {
        try insert(
            .eventTypes,
            [
                ("name", "text", rows.map(\.name)),
                ("declared_at", "timestamptz", times(rows.map(\.declaredAt))),
            ],
            returning: "name", keys: rows.map(\.name), what: "event type")
    }

    private func writeEndpointHealth(_ rows: [CopiedEndpointHealth]) throws {
        try insert(
            .endpointHealth,
            [
                ("endpoint_id", "text", rows.map(\.endpointID)),
                ("last_success_at", "timestamptz", times(rows.map(\.lastSuccessAt))),
                ("last_failure_at", "timestamptz", times(rows.map(\.lastFailureAt))),
                ("failure_streak", "integer", integers(rows.map(\.failureStreak))),
                ("disabled_failing_since", "timestamptz", times(rows.map(\.disabledFailingSince))),
                ("probed_at", "timestamptz", times(rows.map(\.probedAt))),
                ("streak_reset_at", "timestamptz", times(rows.map(\.streakResetAt))),
            ], returning: "endpoint_id", keys: rows.map(\.endpointID), what: "the health of endpoint")
    }

    private func writeAttemptMinutes(_ rows: [CopiedAttemptMinute]) throws {
        try insert(
            .attemptMinutes,
            [
                ("minute", "timestamptz", times(rows.map(\.minute))),
                ("endpoint_id", "text", rows.map(\.endpointID)),
                ("attempts", "integer", integers(rows.map(\.attempts))),
                ("successes", "integer", integers(rows.map(\.successes))),
            ], returning: "endpoint_id || ' ' || keysat_rfc3339(minute)",
            keys: rows.map { "\($0.endpointID) \($0.minute.rfc3339)" }, what: "the summary of")
    }
}

// Values as the write statements take them.
private func times(_ values: [Timestamp?]) -> [String?] { values.map { $0?.rfc3339 } }
private func integers(_ values: [Int?]) -> [String?] { values.map { $0.map(String.init) } }
private func numbers(_ values: [Int64?]) -> [String?] { values.map { $0.map(String.init) } }
