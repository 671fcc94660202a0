public import KeysatCore

/// A row of `webhook_deliveries`, as the operator's commands show it.
public struct DeliveryRecord: Sendable {
    /// The delivery states, as defined on the stored columns.
    public enum State: String, Sendable, CaseIterable {
        /// Not yet delivered, still to be attempted.
        case pending
        /// Pending, and its next attempt time has come.
        case due
        case delivered
        /// Given up on (dead-lettered).
        case dead
        /// Delivered or dead: what may be replayed.
        case finished
        case all

        /// The SQL condition for this state on the columns of table `alias` (none: unqualified),
        /// `now` the expression of the present moment (SQLite's statements bind `:now`;
        /// PostgreSQL's use the database's `now()`). The one definition of each state: every
        /// query of either backend uses it.
        public func condition(_ alias: String = "d", now: String = ":now") -> String {
            let d = alias.isEmpty ? "" : alias + "."
            let pending = "\(d)delivered_at IS NULL AND \(d)next_attempt_at IS NOT NULL"
            let dead = "\(d)delivered_at IS NULL AND \(d)next_attempt_at IS NULL AND \(d)attempt_count > 0"
            switch self {
            case .pending: return pending
            case .due: return "\(pending) AND \(d)next_attempt_at <= \(now)"
            case .delivered: return "\(d)delivered_at IS NOT NULL"
            case .dead: return dead
            case .finished: return "(\(d)delivered_at IS NOT NULL OR (\(dead)))"
            case .all: return "TRUE"
            }
        }
    }

    /// What a row is now, as the operator's commands show it.
    public enum Status: String, Sendable {
        case pending, delivered, dead
        /// Written but never scheduled (`next_attempt_at` NULL, no attempt): an endpoint test
        /// being sent, or a row another program wrote so.
        case unscheduled
    }

    public var id: String
    public var endpointID: String
    public var eventType: String
    public var payload: [UInt8]
    public var attemptCount: Int
    public var nextAttemptAt: String?
    public var lastStatusCode: Int?
    public var lastError: String?
    public var deliveredAt: String?
    public var createdAt: String
    /// Its ordering key and number within (endpoint, key) (issue 23), as stored; `nil` for an
    /// unordered delivery.
    public var orderingKey: String?
    public var sequence: Int64?

    /// What this row is now.
    public var status: Status {
        if deliveredAt != nil { return .delivered }
        if nextAttemptAt != nil { return .pending }
        return attemptCount > 0 ? .dead : .unscheduled
    }

    /// A row as another backend read it (PostgreSQL's, times as RFC 3339 text).
    public init(
        id: String, endpointID: String, eventType: String, payload: [UInt8], attemptCount: Int?,
        nextAttemptAt: String?, lastStatusCode: Int?, lastError: String?, deliveredAt: String?,
        createdAt: String, orderingKey: String? = nil, sequence: Int64? = nil
    ) {
        self.id = id
        self.endpointID = endpointID
        self.eventType = eventType
        self.payload = payload
        self.attemptCount = DeliveryRecord.attemptCount(attemptCount)
        self.nextAttemptAt = nextAttemptAt
        self.lastStatusCode = lastStatusCode
        self.lastError = lastError
        self.deliveredAt = deliveredAt
        self.createdAt = createdAt
        self.orderingKey = orderingKey
        self.sequence = sequence
    }

    static let columns = columns(payload: true)

    /// The columns `init(row:)` reads; without the payload (NULL in its place, read as empty)
    /// where nothing prints it: a listing of 40 rows of 5 MB read 213 MB (issue 20).
    static func columns(payload: Bool) -> String {
        "d.id, d.endpoint_id, d.event_type, \(payload ? "d.payload_json" : "NULL"), d.attempt_count, "
            + "d.next_attempt_at, d.last_status_code, d.last_error, d.delivered_at, d.created_at, "
            + "d.keysat_webhooks_ordering_key, d.keysat_webhooks_sequence"
    }

    init(row: Row) {
        id = row.string(0)
        endpointID = row.string(1)
        eventType = row.string(2)
        payload = row.bytes(3) ?? []
        attemptCount = DeliveryRecord.attemptCount(row.integer(4))
        nextAttemptAt = row.text(5)
        lastStatusCode = row.integer(6)
        lastError = row.text(7)
        deliveredAt = row.text(8)
        createdAt = row.string(9)
        orderingKey = row.text(10)
        sequence = row.integer(11).map { Int64($0) }
    }

    /// The row as a JSON object keyed by its column names, plus `status`, and with the payload
    /// `erased` (whether it was).
    public func json(includePayload: Bool = true) -> String {
        var members: [(String, String)] = [
            ("id", JSONText.string(id)), ("endpoint_id", JSONText.string(endpointID)),
            ("event_type", JSONText.string(eventType)),
        ]
        if includePayload {
            // An erased payload is its marker, `{"erased":true,"erased_at":…}` (PayloadErasure).
            members += [("payload", payloadJSON), ("erased", isErased ? "true" : "false")]
        }
        members += [
            ("attempt_count", String(attemptCount)), ("next_attempt_at", JSONText.string(nextAttemptAt)),
            ("last_status_code", JSONText.number(lastStatusCode)), ("last_error", JSONText.string(lastError)),
            ("delivered_at", JSONText.string(deliveredAt)), ("created_at", JSONText.string(createdAt)),
            ("ordering_key", JSONText.string(orderingKey)), ("sequence", sequence.map { String($0) } ?? "null"),
            ("status", JSONText.string(status.rawValue)),
        ]
        return JSONText.object(members)
    }
}

/// One row of the attempt history.
public struct AttemptRecord: Sendable {
    public var attemptNumber: Int
    public var startedAt: String
    public var durationMS: Int
    public var statusCode: Int?
    public var error: String?
    public var responseBody: String?

    public init(
        attemptNumber: Int, startedAt: String, durationMS: Int, statusCode: Int?, error: String?,
        responseBody: String?
    ) {
        self.attemptNumber = attemptNumber
        self.startedAt = startedAt
        self.durationMS = durationMS
        self.statusCode = statusCode
        self.error = error
        self.responseBody = responseBody
    }

    public var json: String {
        JSONText.object([
            ("attempt_number", String(attemptNumber)), ("started_at", JSONText.string(startedAt)),
            ("duration_ms", String(durationMS)), ("status_code", JSONText.number(statusCode)),
            ("error", JSONText.string(error)), ("response_body", JSONText.string(responseBody)),
        ])
    }
}

/// Which deliveries an operator's command is about.
public struct DeliveryFilter: Sendable {
    public var state: DeliveryRecord.State = .all
    public var endpointID: String?
    public var eventType: String?
    /// `created_at` at or after this moment.
    public var since: Timestamp?
    /// `created_at` before this moment.
    public var until: Timestamp?

    public init() {}

    /// The WHERE clause and its named values.
    func sql(now: Timestamp) -> (String, [(String, SQLValue)]) {
        var conditions = [state.condition()]
        var values: [(String, SQLValue)] = [(":now", .text(now.rfc3339))]
        if let endpointID {
            conditions.append("d.endpoint_id = :endpoint")
            values.append((":endpoint", .text(endpointID)))
        }
        if let eventType {
            conditions.append("d.event_type = :event")
            values.append((":event", .text(eventType)))
        }
        if let since {
            conditions.append("d.created_at >= :since")
            values.append((":since", .text(since.rfc3339)))
        }
        if let until {
            conditions.append("d.created_at < :until")
            values.append((":until", .text(until.rfc3339)))
        }
        return (conditions.joined(separator: " AND "), values)
    }
}

extension DeliveryRecord {
    /// An `attempt_count` as read from a row, which another program may have written: kept
    /// within 0...1,000,000, so that adding the next attempt can never overflow.
    static func attemptCount(_ value: Int?) -> Int { min(max(value ?? 0, 0), 1_000_000) }
}

extension DeliveryRecord {
    /// The payload as a JSON value (the envelope, as sent), controls escaped; a payload that is
    /// not JSON (written by another program) as a JSON string.
    public var payloadJSON: String {
        guard (try? JSONValidator.validate(payload)) != nil else {
            return JSONText.string(String(decoding: payload, as: UTF8.self))
        }
        return String(decoding: JSONText.escapingControls(Array(Envelope.trimmed(payload))), as: UTF8.self)
    }
}

extension DeliveryRecord {
    /// Whether the payload was erased (`PayloadErasure`): a marker in its place.
    public var isErased: Bool { PayloadErasure.isErased(payload) }
}
