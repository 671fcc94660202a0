public import KeysatCore

// MARK: - What a copy moves

/// The tables `keysat-webhooks copy` moves, in the order it moves them: endpoints before the
/// deliveries that name them (SQLite enforces that reference), deliveries before their history.
///
/// Not moved: claims (a copied row is unclaimed), `keysat_webhooks_state` (what one run tells
/// the next on its host: the metrics file's last failure, the recording check), and SQLite's
/// per-endpoint totals, which its triggers recompute as the deliveries are written.
public enum QueueTable: String, CaseIterable, Sendable {
    case endpoints = "webhook_endpoints"
    case deliveries = "webhook_deliveries"
    case attempts = "webhook_delivery_attempts"
    case idempotencyKeys = "keysat_webhooks_idempotency"
    case eventTypes = "keysat_webhooks_event_types"
    case endpointHealth = "keysat_webhooks_endpoint_health"
    case attemptMinutes = "keysat_webhooks_attempt_minutes"
    /// The last sequence number given per endpoint and ordering key (issue 23): copied, so that
    /// the target numbers a key's next delivery after the ones it holds.
    case keySequences = "keysat_webhooks_key_sequences"

    /// The table's name in both backends.
    public var name: String { rawValue }
}

/// Rows per table.
public typealias QueueTableCounts = [QueueTable: Int]

/// One endpoint, every column (times as instants: each backend spells them its own way).
public struct CopiedEndpoint: Sendable, Equatable {
    public var id: String
    public var url: String
    public var secret: String
    public var eventTypes: String
    /// Keysat's integer, kept as it is (`active = 1` is active).
    public var active: Int
    public var description: String
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    public var previousSecret: String?
    public var previousSecretExpiresAt: Timestamp?
    public var disabledReason: String?
    public var disabledAt: Timestamp?
    public var ordered: Int
    /// Per-endpoint retry settings (issue 22), as stored: NULL is the default.
    public var retrySchedule: String?
    public var retryJitter: Int?
    public var customHeaders: String?
    public var clientCert: String?
    public var clientKey: String?
    /// Standard Webhooks v1a signing keys and the X-Keysat-Signature switch (issue 22), as stored.
    public var signingKey: String?
    public var previousSigningKey: String?
    public var keysatSignature: Int?
    /// The rate limit (issue 22), as stored. Its token bucket is not copied: a run-to-run note,
    /// and at most one burst for the target's first run.
    public var rateLimit: String?
    /// Ordering keys (issue 23), as stored: `--order-by` and `--order-on-dead`.
    public var orderBy: String?
    public var orderOnDead: String?
    /// The content filter (issue 23), as stored.
    public var eventFilter: String?

    public init(
        id: String, url: String, secret: String, eventTypes: String, active: Int, description: String,
        createdAt: Timestamp, updatedAt: Timestamp, previousSecret: String?,
        previousSecretExpiresAt: Timestamp?,
        disabledReason: String?, disabledAt: Timestamp?, ordered: Int
    ) {
        self.id = id
        self.url = url
        self.secret = secret
        self.eventTypes = eventTypes
        self.active = active
        self.description = description
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.previousSecret = previousSecret
        self.previousSecretExpiresAt = previousSecretExpiresAt
        self.disabledReason = disabledReason
        self.disabledAt = disabledAt
        self.ordered = ordered
    }
}

/// One delivery, every column but its claim; read and written in the order rows were written
/// (SQLite's rowid, PostgreSQL's `seq`), which is what ordered endpoints and due pages go by.
public struct CopiedDelivery: Sendable, Equatable {
    public var id: String
    public var endpointID: String
    public var eventType: String
    /// The exact bytes enqueued (signatures cover them), as UTF-8 text without NUL.
    public var payload: String
    public var attemptCount: Int
    public var nextAttemptAt: Timestamp?
    public var lastStatusCode: Int?
    public var lastError: String?
    public var deliveredAt: Timestamp?
    public var createdAt: Timestamp
    /// The id of its first attempt, where SQLite finds its history (schema step 12).
    public var history: Int64?
    /// Its ordering key and number in it (issue 23).
    public var orderingKey: String?
    public var sequence: Int64?

    public init(
        id: String, endpointID: String, eventType: String, payload: String, attemptCount: Int,
        nextAttemptAt: Timestamp?, lastStatusCode: Int?, lastError: String?, deliveredAt: Timestamp?,
        createdAt: Timestamp, history: Int64?
    ) {
        self.id = id
        self.endpointID = endpointID
        self.eventType = eventType
        self.payload = payload
        self.attemptCount = attemptCount
        self.nextAttemptAt = nextAttemptAt
        self.lastStatusCode = lastStatusCode
        self.lastError = lastError
        self.deliveredAt = deliveredAt
        self.createdAt = createdAt
        self.history = history
    }
}

/// One attempt of the history.
public struct CopiedAttempt: Sendable, Equatable {
    public var id: Int64
    public var deliveryID: String
    public var attemptNumber: Int
    public var startedAt: Timestamp
    public var durationMS: Int
    public var statusCode: Int?
    public var error: String?
    public var responseBody: String?
    public var history: Int64?

    public init(
        id: Int64, deliveryID: String, attemptNumber: Int, startedAt: Timestamp, durationMS: Int,
        statusCode: Int?,
        error: String?, responseBody: String?, history: Int64?
    ) {
        self.id = id
        self.deliveryID = deliveryID
        self.attemptNumber = attemptNumber
        self.startedAt = startedAt
        self.durationMS = durationMS
        self.statusCode = statusCode
        self.error = error
        self.responseBody = responseBody
        self.history = history
    }
}

/// One idempotency key of keysat-enqueue.
public struct CopiedIdempotencyKey: Sendable, Equatable {
    public var key: String
    public var eventType: String
    public var deliveriesJSON: String
    public var createdAt: Timestamp
    public var requestHash: String?

    public init(
        key: String, eventType: String, deliveriesJSON: String, createdAt: Timestamp, requestHash: String?
    ) {
        self.key = key
        self.eventType = eventType
        self.deliveriesJSON = deliveriesJSON
        self.createdAt = createdAt
        self.requestHash = requestHash
    }
}

/// One event type the operator declared.
public struct CopiedEventType: Sendable, Equatable {
    public var name: String
    public var declaredAt: Timestamp

    public init(name: String, declaredAt: Timestamp) {
        self.name = name
        self.declaredAt = declaredAt
    }
}

/// One endpoint's health: what the breaker and `stats` read.
public struct CopiedEndpointHealth: Sendable, Equatable {
    public var endpointID: String
    public var lastSuccessAt: Timestamp?
    public var lastFailureAt: Timestamp?
    public var failureStreak: Int
    /// The recovery's state (schema step 16): the streak a run disabled it for, its last
    /// probe, an operator's last enable.
    public var disabledFailingSince: Timestamp?
    public var probedAt: Timestamp?
    public var streakResetAt: Timestamp?

    public init(
        endpointID: String, lastSuccessAt: Timestamp?, lastFailureAt: Timestamp?, failureStreak: Int,
        disabledFailingSince: Timestamp? = nil, probedAt: Timestamp? = nil, streakResetAt: Timestamp? = nil
    ) {
        self.endpointID = endpointID
        self.lastSuccessAt = lastSuccessAt
        self.lastFailureAt = lastFailureAt
        self.failureStreak = failureStreak
        self.disabledFailingSince = disabledFailingSince
        self.probedAt = probedAt
        self.streakResetAt = streakResetAt
    }
}

/// One endpoint's attempts in one minute (what `stats` sums over a day).
public struct CopiedAttemptMinute: Sendable, Equatable {
    /// The minute's start.
    public var minute: Timestamp
    public var endpointID: String
    public var attempts: Int
    public var successes: Int

    public init(minute: Timestamp, endpointID: String, attempts: Int, successes: Int) {
        self.minute = minute
        self.endpointID = endpointID
        self.attempts = attempts
        self.successes = successes
    }
}

/// The last sequence number given to an endpoint's ordering key (issue 23).
public struct CopiedKeySequence: Sendable, Equatable {
    public var endpointID: String
    public var orderingKey: String
    public var last: Int64

    public init(endpointID: String, orderingKey: String, last: Int64) {
        self.endpointID = endpointID
        self.orderingKey = orderingKey
        self.last = last
    }
}

/// A batch of rows of one table, as a backend reads and writes them.
public enum CopyBatch: Sendable {
    case endpoints([CopiedEndpoint])
    case deliveries([CopiedDelivery])
    case attempts([CopiedAttempt])
    case idempotencyKeys([CopiedIdempotencyKey])
    case eventTypes([CopiedEventType])
    case endpointHealth([CopiedEndpointHealth])
    case attemptMinutes([CopiedAttemptMinute])
    case keySequences([CopiedKeySequence])

    public var table: QueueTable {
        switch self {
        case .endpoints: .endpoints
        case .deliveries: .deliveries
        case .attempts: .attempts
        case .idempotencyKeys: .idempotencyKeys
        case .eventTypes: .eventTypes
        case .endpointHealth: .endpointHealth
        case .attemptMinutes: .attemptMinutes
        case .keySequences: .keySequences
        }
    }

    public var count: Int {
        switch self {
        case .endpoints(let rows): rows.count
        case .deliveries(let rows): rows.count
        case .attempts(let rows): rows.count
        case .idempotencyKeys(let rows): rows.count
        case .eventTypes(let rows): rows.count
        case .endpointHealth(let rows): rows.count
        case .attemptMinutes(let rows): rows.count
        case .keySequences(let rows): rows.count
        }
    }
}

/// How big a batch may grow: so many rows, or so many bytes of text, whichever comes first
/// (payloads and response bodies make a few rows large). Memory stays bounded by one batch
/// read and one being written, whatever the queue's size.
public struct CopyBatchLimit: Sendable {
    public var rows: Int
    public var bytes: Int

    public init(rows: Int = 1000, bytes: Int = 16 << 20) {
        self.rows = max(rows, 1)
        self.bytes = max(bytes, 1)
    }
}

/// Gathers rows into batches within a `CopyBatchLimit`, handing each full one to `flush`.
public struct CopyBatcher<Row> {
    let limit: CopyBatchLimit
    let make: ([Row]) -> CopyBatch
    var rows: [Row] = []
    var bytes = 0

    public init(_ limit: CopyBatchLimit, _ make: @escaping ([Row]) -> CopyBatch) {
        self.limit = limit
        self.make = make
        rows.reserveCapacity(min(limit.rows, 1000))
    }

    /// Adds `row` (of about `size` bytes), flushing first when it would not fit.
    public mutating func add(_ row: Row, size: Int, _ flush: (CopyBatch) throws -> Void) throws {
        if !rows.isEmpty, rows.count >= limit.rows || bytes + size > limit.bytes { try finish(flush) }
        rows.append(row)
        bytes += size
    }

    /// Flushes what is left.
    public mutating func finish(_ flush: (CopyBatch) throws -> Void) throws {
        guard !rows.isEmpty else { return }
        let batch = make(rows)
        rows.removeAll(keepingCapacity: true)
        bytes = 0
        try flush(batch)
    }
}

// MARK: - The backends' part

/// Reading a whole queue, for `keysat-webhooks copy`: each backend its own SQL, the order of
/// tables and the checks above it (`QueueCopy`).
public protocol QueueExport: AnyObject {
    /// Runs `body` with a reader that sees one snapshot of the queue (a read transaction),
    /// ended when `body` returns.
    func exporting<Value>(_ body: (any QueueReader) throws -> Value) throws -> Value
}

/// Reading within one snapshot.
public protocol QueueReader: AnyObject {
    /// Rows per table.
    func counts() throws -> QueueTableCounts
    /// Deliveries under a lease that has not ended (a run on some host is sending them);
    /// 0 where there are no leases (SQLite).
    func liveLeases() throws -> Int
    /// Every row of `table` in the order it was written, in batches within `limit`, every
    /// value checked to be what both backends can hold: a row that is not is an error naming
    /// it (65), before anything of it is handed on.
    func read(_ table: QueueTable, limit: CopyBatchLimit, _ body: (CopyBatch) throws -> Void) throws
}

/// Writing a whole queue, for `keysat-webhooks copy`.
public protocol QueueImport: AnyObject {
    /// Runs `body` with a writer inside one write transaction: committed when `body` returns,
    /// rolled back when it throws, so that the database is then as it was.
    func importing<Value>(_ body: (any QueueWriter) throws -> Value) throws -> Value
}

/// Writing within one transaction.
public protocol QueueWriter: AnyObject {
    /// Rows per table, as the transaction sees them (what it wrote included).
    func counts() throws -> QueueTableCounts
    /// The largest attempt id in the history, 0 when it is empty: copied attempts are numbered
    /// after it.
    func largestAttemptID() throws -> Int64
    /// Writes `batch` in the order given; a key already there (an id, an idempotency key, an
    /// event type's name) is an error naming it (65), never overwritten.
    func write(_ batch: CopyBatch) throws
    /// Called once every batch is written, before the counts are verified: what the backend
    /// must bring up to date (PostgreSQL's identity of the attempt ids).
    func finishWriting() throws
}
