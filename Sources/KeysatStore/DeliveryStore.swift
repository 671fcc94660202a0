public import KeysatCore

/// A delivery that is due, with what is needed to send it.
public struct DueDelivery: Sendable {
    public var id: String
    public var endpointID: String
    public var eventType: String
    public var payload: [UInt8]
    /// Attempts made before this one.
    public var attemptCount: Int
    public var nextAttemptAt: String
    /// The endpoint's URL and secret; `nil` when the endpoint was deleted.
    public var url: String?
    public var secret: String?
    /// `false` when the endpoint is disabled or deleted.
    public var endpointActive: Bool
    /// The secret before the last rotation, while its grace period lasts.
    public var previousSecret: String?
    /// The endpoint takes its deliveries one at a time, oldest first.
    public var ordered = false
    /// The endpoint's `v1a` signing key (`whsk_…`), and the one before the last rotation while
    /// its grace period lasts; `nil`: HMAC signatures only.
    public var signingKey: String?
    public var previousSigningKey: String?
    /// Whether the request carries `X-Keysat-Signature`.
    public var keysatSignature = true
    /// Its ordering key and its number in it (`X-Keysat-Sequence`), both set or neither
    /// (issue 23): deliveries of one endpoint and key go one at a time, by number.
    public var orderingKey: String?
    public var sequence: Int64?
    /// The endpoint's settings as the row was read (its retry schedule decides a failure's
    /// next time), and what was wrong with them if another program wrote them.
    public var settings: EndpointSettings {
        get { settingsBox.value }
        set { settingsBox = newValue == EndpointSettings.defaults ? .defaults : SettingsBox(newValue) }
    }
    public var settingsProblem: String?
    /// The settings in one reference: a run copies its rows between buffers many times, and a
    /// copy of the settings' own references (schedule, headers, certificate) cost each copy a
    /// dozen retains and releases — 4–7 % of a run's CPU (perf, make bench). Rows of endpoints
    /// with the defaults, the common case, share one.
    private var settingsBox = SettingsBox.defaults

    final class SettingsBox: Sendable {
        let value: EndpointSettings
        init(_ value: EndpointSettings) { self.value = value }
        static let defaults = SettingsBox(EndpointSettings.defaults)
    }
    public var createdAt = ""
    /// The row's rowid (PostgreSQL: its `seq`), for paging.
    public var rowID: Int64 = 0
    /// Whether the row is due, judged by the store on its own clock (PostgreSQL: the
    /// database's, the only clock of due times there); `nil` where the run judges by its `t0`.
    public var isDue: Bool?
    /// The token of this run's claim on the row (`DeliveryStore.claim`), which the outcome's
    /// write must match; `nil` where runs do not claim (SQLite, under the run lock).
    public var claimToken: String?
    /// The payload is larger than `DueDelivery.inlinePayloadCharacters` and was not read with
    /// the row: `payload` is empty until `DeliveryStore.payload(of:)` reads it, just before its
    /// request starts. So the rows a run holds cost little memory whatever the payloads' size.
    public var payloadDeferred = false
    /// Why this row cannot be sent as it stands (a NULL id, a count or a time that does not
    /// parse; see `DeliveryRowCheck`), or `nil`. Such a row is dead-lettered, never sent.
    public var defect: String?
    /// With `defect`: the row's values as read, which `record` matches before touching it.
    public var fingerprint: String?
    /// With `defect`: `next_attempt_at` as stored, byte for byte (see `DueCursor`).
    public var cursorKey: [UInt8]?

    /// Payloads up to this many characters are read with their row.
    public static let inlinePayloadCharacters = 2048

    public init(
        id: String, endpointID: String, eventType: String, payload: [UInt8], attemptCount: Int,
        nextAttemptAt: String, url: String?, secret: String?, endpointActive: Bool,
        previousSecret: String? = nil
    ) {
        self.previousSecret = previousSecret
        self.id = id
        self.endpointID = endpointID
        self.eventType = eventType
        self.payload = payload
        self.attemptCount = attemptCount
        self.nextAttemptAt = nextAttemptAt
        self.url = url
        self.secret = secret
        self.endpointActive = endpointActive
    }
}

/// Where a page of due deliveries ended; the next page starts after it.
public struct DueCursor: Sendable, Equatable {
    /// The last row's `next_attempt_at` as stored, byte for byte: a text another program wrote
    /// with a NUL in it, cut short as a String, would make the next page read that row again.
    public var key: [UInt8]
    /// The row's rowid: with `next_attempt_at`, a key that Keysat's index on `next_attempt_at`
    /// (which holds rowids) can seek to.
    public var rowID: Int64
    public init(nextAttemptAt: String, rowID: Int64) {
        self.key = Array(nextAttemptAt.utf8)
        self.rowID = rowID
    }
    /// The cursor after `row`, the last of a page.
    public init(after row: DueDelivery) {
        key = row.cursorKey ?? Array(row.nextAttemptAt.utf8)
        rowID = row.rowID
    }
    public var nextAttemptAt: String { String(decoding: key, as: UTF8.self) }
}

/// What `DeliveryStore.claim` answers.
public enum Claim: Sendable {
    /// The delivery, now this run's (with its claim token).
    case claimed(DueDelivery)
    /// Another run has it, or it is no longer due: this run leaves it.
    case taken
    /// Its endpoint takes no more attempts now: other runs have its in-flight slots, or it is
    /// ordered and busy. This run leaves the endpoint's rows to them.
    case endpointBusy
    /// Its endpoint's rate limit has no token left for it (`RateLimit`): the next one comes in
    /// this many seconds. The run waits that long, or leaves the endpoint to a later run.
    case rateLimited(nextTokenInSeconds: Double)
}

/// The result of one attempt, to be written to its delivery row and to the attempt history.
public struct AttemptOutcome: Sendable {
    public enum Result: Sendable, Equatable {
        /// The receiver accepted it (2xx).
        case delivered
        /// Failed; try again at this moment.
        case retry(at: Timestamp)
        /// Failed for the last time (or cannot be sent at all): dead-lettered.
        case dead
    }

    public var deliveryID: String
    /// The delivery's endpoint, for the per-endpoint summaries `record` keeps ("" when unknown:
    /// the outcome is then recorded but not summarised).
    public var endpointID = ""
    /// The row's rowid when known (0 otherwise): found faster than by the text id.
    public var rowID: Int64 = 0
    /// Attempts made before this one, as read; the row is updated only if it still says so.
    public var previousAttemptCount: Int
    public var result: Result
    public var statusCode: Int?
    /// `last_error`; `nil` when delivered.
    public var error: String?
    public var startedAt: Timestamp
    public var finishedAt: Timestamp
    /// The first bytes of the response body, kept in the attempt history.
    public var responseExcerpt: [UInt8]
    /// `false` when no request was made (the endpoint was disabled or deleted).
    public var requested: Bool
    /// The claim under which the attempt was made (`DueDelivery.claimToken`): a backend whose
    /// runs claim writes the outcome only where the row still carries it.
    public var claimToken: String?
    /// Set for a row that cannot be sent as it stands (`DueDelivery.defect`): dead-lettered
    /// without a request, matched by `rowID` and these values as read, with no attempt history
    /// (its id may be NULL) and no effect on the endpoint's health.
    public var fingerprint: String?
    /// The attempt re-sent a dead delivery to probe its endpoint, disabled for failing: dead
    /// again, it is not announced again (`webhook.delivery.dead` said it once).
    public var isProbe = false

    /// Whether `webhook.delivery.dead` is sent about it: a dead-lettered delivery, not a probe
    /// (its endpoint's recovery says what came of it).
    public var announcedDead: Bool { result == .dead && !isProbe }

    public init(
        deliveryID: String, previousAttemptCount: Int, result: Result, statusCode: Int?, error: String?,
        startedAt: Timestamp, finishedAt: Timestamp, responseExcerpt: [UInt8] = [], requested: Bool = true
    ) {
        self.deliveryID = deliveryID
        self.previousAttemptCount = previousAttemptCount
        self.result = result
        self.statusCode = statusCode
        self.error = error
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.responseExcerpt = responseExcerpt
        self.requested = requested
    }
}

/// What the delivery engine needs of a store. A second backend implements just this.
public protocol DeliveryStore: AnyObject {
    /// Up to `limit` deliveries due at `dueBy` (pending, `next_attempt_at <= dueBy`), oldest
    /// `next_attempt_at` first, starting after `cursor`: those never attempted, or with
    /// `retries`, those attempted before.
    func dueDeliveries(dueBy: Timestamp, retries: Bool, after cursor: DueCursor?, limit: Int) throws
        -> [DueDelivery]

    /// Pending rows whose `next_attempt_at` is not a time at all (a number, a blob, text that
    /// does not begin with a digit), which the due pages never reach: up to `limit`, by rowid.
    /// Each has its `defect` set.
    func unschedulable(limit: Int) throws -> [DueDelivery]

    /// The oldest pending delivery of an endpoint (the first written), due or not.
    ///
    /// "Oldest" is by the order rows were written (SQLite's rowid, which only grows while the
    /// newest row stays), never by `created_at`: a wall clock stepped back would have put an
    /// event enqueued after the step before one enqueued earlier (issue 20: `license.revoked`
    /// delivered before `license.issued`).
    func oldestPending(endpointID: String) throws -> DueDelivery?

    /// The head of an ordering key (issue 23): the pending delivery of `endpointID` and `key`
    /// with the lowest sequence number, due or not; `nil` when it has none, or with `hold`
    /// when an older one of the key is dead (the key waits for an operator).
    func keyHead(endpointID: String, key: String, hold: Bool) throws -> DueDelivery?

    /// The payload of a delivery read without it (`payloadDeferred`); `nil` when the row is gone.
    func payload(of delivery: DueDelivery) throws -> [UInt8]?

    /// Writes outcomes to their rows and to the attempt history, in one transaction.
    func record(_ outcomes: [AttemptOutcome]) throws

    /// Takes `deliveries` (of one endpoint, in the order the run would send them) for this run
    /// just before their requests start, so that no other run sends them meanwhile: an answer
    /// for each, in order. `.claimed`, with its claim token; otherwise `.taken` (another run has
    /// it, or it is no longer due) or `.endpointBusy` (its endpoint would have more than
    /// `perEndpoint` attempts in flight across all runs — `inFlight` of this run's, which it
    /// counts itself, since its finished attempts keep their claims until their outcomes are
    /// committed — or, ordered, has an older delivery pending or one in flight). A claim lasts
    /// `leaseSeconds`; after that any run may take the row again. A store whose runs cannot
    /// overlap (SQLite, under the run lock) returns them as they are. An endpoint with a rate
    /// limit (`DueDelivery.settings.rateLimit`) also needs a token per delivery from its bucket,
    /// taken here, before the request starts, else `.rateLimited`.
    func claim(_ deliveries: [DueDelivery], perEndpoint: Int, inFlight: Int, leaseSeconds: Double) throws
        -> [Claim]

    /// How many deliveries of one endpoint are worth claiming in one call (1: no more than the
    /// run starts at a time; a store whose claims cost a round trip to a server says more).
    var claimBatch: Int { get }

    /// Hands back claimed deliveries whose requests will not start (the run stopped starting,
    /// or their endpoint's breaker opened, while the claim was being answered): each row whose
    /// claim is still its own is due again for any run at once, rather than when its lease
    /// ends, and no longer counts against its endpoint's cap. A store without claims does
    /// nothing.
    func release(_ claimed: [DueDelivery]) throws

    /// Erases previous secrets whose grace period ended before `now`; returns how many.
    func eraseExpiredSecrets(now: Timestamp) throws -> Int

    /// Disables an endpoint, recording why; `false` if it already was. With `failingSince`
    /// (disabled for its failing streak, begun then), later runs probe it (`takeProbes`);
    /// without (410 Gone), never.
    func disableEndpoint(id: String, reason: String, failingSince: Timestamp?) throws -> Bool

    /// Takes the probes due now: endpoints disabled for failing, still disabled, not probed by
    /// any run for `everySeconds`, up to `limit`; each is marked probed in the same write, which
    /// is its lease (no other run takes it for another `everySeconds`). Returns each one's
    /// newest dead delivery, to be sent again as it is (same id) and its outcome recorded as
    /// any attempt's: delivered, or dead again.
    func takeProbes(everySeconds: Int64, limit: Int) throws -> [DueDelivery]

    /// Enables again an endpoint whose probe was answered 2xx (its outcome committed), if it is
    /// still disabled for failing; re-queues what its outage dead-lettered
    /// (`EndpointRecovery.requeued`) and announces `webhook.endpoint.recovered`, in one
    /// transaction. Returns how many deliveries were re-queued, `nil` when not enabled.
    func recoverEndpoint(id: String, reason: String) throws -> Int?

    /// When the endpoint's current run of failed attempts began, if its last attempt failed.
    func failingSince(endpointID: String) throws -> Timestamp?

    /// Enqueues `webhook.endpoint.failing` with `data` about `endpointID`, whose failing streak
    /// began at `since` and has reached `percent` of `--disable-after`, unless this level or a
    /// higher one of the same streak was announced; `true` when it did. The level is kept in
    /// the database, so that each is said once per streak whichever run sees it.
    func announceFailing(endpointID: String, since: Timestamp, percent: Int, data: [UInt8]) throws -> Bool

    /// Returns once every outcome passed to `record` is committed (a store that commits on
    /// another thread waits for it); throws a commit's failure.
    func drain() throws

    /// Proves that outcomes can be recorded, before a run's first request: opens what records
    /// them and commits one small write. A run that cannot record must not send: every later
    /// run would send the same deliveries again (issue 20: a full disk, three runs, 890 requests
    /// for 347 deliveries).
    func prepareToRecord() throws

    /// Throws at once the failure of a commit of outcomes handed to `record` earlier (a store
    /// that commits on another thread), so that the run starts no request it could not record.
    func checkRecording() throws

    /// Requests whose outcomes were handed to `record` and are not committed, after a failure
    /// (waiting for commits under way to end).
    func unrecordedRequests() -> Int
}

extension DeliveryStore {
    /// Claims that are not kept (SQLite, under the run lock; a test's store) need no handing back.
    public func release(_ claimed: [DueDelivery]) throws {}

    /// A store that writes no ordering keys (a test's) has no heads: a wrapping store passes
    /// the call on (`BackgroundRecorder`), else the keyed rows it serves would wait.
    public func keyHead(endpointID: String, key: String, hold: Bool) throws -> DueDelivery? { nil }

    /// One delivery's claim (`claim(_:perEndpoint:inFlight:leaseSeconds:)` of one).
    public func claim(_ delivery: DueDelivery, perEndpoint: Int, inFlight: Int, leaseSeconds: Double) throws
        -> Claim
    {
        try claim([delivery], perEndpoint: perEndpoint, inFlight: inFlight, leaseSeconds: leaseSeconds).first
            ?? .taken
    }

    /// A store that keeps no operational events (a test's) announces nothing.
    public func announceFailing(endpointID: String, since: Timestamp, percent: Int, data: [UInt8]) throws
        -> Bool
    {
        false
    }

    /// A store that commits in `record` itself has nothing to wait for.
    public func drain() throws {}

    /// A store that commits in `record` itself throws its failure there.
    public func checkRecording() throws {}

    /// A store that commits in `record` itself keeps nothing: the caller still holds what failed.
    public func unrecordedRequests() -> Int { 0 }
}

extension WebhookStore: DeliveryStore {
    /// Runs on one SQLite file never overlap (the run lock): nothing to claim but an endpoint's
    /// rate tokens (`takeRateTokens`; no statement for an endpoint without a limit). Written
    /// out, not a default of the protocol, so that a store wrapping another cannot forget to
    /// pass it on.
    public func claim(_ deliveries: [DueDelivery], perEndpoint: Int, inFlight: Int, leaseSeconds: Double) throws
        -> [Claim]
    {
        guard let first = deliveries.first, let limit = first.settings.rateLimit else {
            return deliveries.map { .claimed($0) }
        }
        let (taken, nextIn) = try takeRateTokens(endpointID: first.endpointID, limit: limit, wanted: deliveries.count)
        return deliveries.enumerated().map { index, row in
            index < taken ? .claimed(row) : .rateLimited(nextTokenInSeconds: nextIn ?? 0)
        }
    }

    /// Claims cost nothing here: the run takes one delivery at a time, in turn per endpoint.
    public var claimBatch: Int { 1 }

    /// The columns of a due delivery and its endpoint; `?1` is the moment secrets are valid at.
    static let dueColumns = """
        SELECT d.id, d.endpoint_id, d.event_type,
               CASE WHEN length(d.payload_json) <= \(DueDelivery.inlinePayloadCharacters) THEN d.payload_json END,
               d.attempt_count, d.next_attempt_at,
               e.url, e.secret, \(isActive("e")),
               CASE WHEN e.previous_secret_expires_at > ?1 THEN e.previous_secret END,
               coalesce(e.ordered, 0), d.created_at, d.rowid, e.retry_schedule, e.retry_jitter,
               e.custom_headers, e.client_cert, e.client_key,
               e.signing_key, CASE WHEN e.previous_secret_expires_at > ?1 THEN e.previous_signing_key END,
               coalesce(e.keysat_signature, 1), e.rate_limit,
               d.keysat_webhooks_ordering_key, d.keysat_webhooks_sequence, e.order_on_dead, e.event_filter
        FROM webhook_deliveries AS d LEFT JOIN webhook_endpoints AS e ON e.id = d.endpoint_id
        """

    static func dueDelivery(_ row: Row) -> DueDelivery {
        // First: a column's type can be read only before it is read as another type.
        let defect = DeliveryRowCheck.defect(row, .init(id: 0, attemptCount: 4, nextAttemptAt: 5))
        var delivery = DueDelivery(
            id: row.string(0), endpointID: row.string(1), eventType: row.string(2),
            payload: row.bytes(3) ?? [], attemptCount: DeliveryRecord.attemptCount(row.integer(4)),
            nextAttemptAt: row.string(5), url: row.text(6), secret: row.text(7),
            endpointActive: row.integer(8) != 0, previousSecret: row.text(9))
        delivery.ordered = row.integer(10) == 1
        delivery.createdAt = row.string(11)
        delivery.rowID = Int64(row.integer(12) ?? 0)
        (delivery.settings, delivery.settingsProblem) = EndpointSettings.fromStored(
            retrySchedule: row.text(13), retryJitter: row.text(14), customHeaders: row.text(15),
            clientCert: row.text(16), clientKey: row.text(17), rateLimit: row.text(21), filter: row.text(25),
            orderOnDead: row.text(24))
        if let (key, sequence) = storedOrderingKey(row, key: 22, sequence: 23) {
            delivery.orderingKey = key
            delivery.sequence = sequence
        }
        delivery.signingKey = row.text(18)
        delivery.previousSigningKey = row.text(19)
        delivery.keysatSignature = row.integer(20) != 0
        delivery.payloadDeferred = row.isNull(3)
        if let defect {
            delivery.defect = defect.reason
            delivery.fingerprint = defect.fingerprint
            // Its time as stored, for the page cursor: as a String it would end at a NUL.
            delivery.cursorKey = row.rawBytes(5)
        }
        return delivery
    }

    /// A row's ordering key and number, when the key is text that reads back as it is stored
    /// and the number an integer; else `nil`, and the row goes as one without a key (as a row
    /// whose number is missing does). Another program's blob, NUL or bytes that are not UTF-8
    /// would become another key as a `String`: its head (`keyHead`, which matches the key as
    /// read) never found, such a row was never sent nor dead-lettered.
    static func storedOrderingKey(_ row: Row, key: Int32, sequence: Int32) -> (String, Int64)? {
        guard row.isText(key), row.isInteger(sequence) else { return nil }
        let bytes = row.rawBytes(key)
        guard !bytes.contains(0), let text = String(validating: bytes, as: UTF8.self) else { return nil }
        return (text, Int64(row.integer(sequence) ?? 0))
    }

    public func dueDeliveries(dueBy: Timestamp, retries: Bool, after cursor: DueCursor?, limit: Int) throws
        -> [DueDelivery]
    {
        // Two statements rather than one with "?2 IS NULL OR …", which would keep SQLite from
        // seeking idx_webhook_deliveries_pending to the cursor. The condition is State.due's
        // in the very terms of that partial index (`<= ?1` implies NOT NULL). `>= '0'` keeps
        // out what is not a time (numbers sort before all text), which `unschedulable` finds: a
        // number on a page would make the cursor, read as text, skip the rows after it.
        let after = cursor == nil ? "" : "AND (d.next_attempt_at, d.rowid) > (?2, ?3)"
        return try database.prepare(
            Self.dueColumns + "\n" + """
                WHERE d.delivered_at IS NULL AND d.next_attempt_at >= '0' AND d.next_attempt_at <= ?1 \(after)
                  AND (d.attempt_count > 0) = ?5
                ORDER BY d.next_attempt_at, d.rowid
                LIMIT ?4
                """
        ).rows([
            .text(dueBy.rfc3339), cursor.map { .bytes($0.key) } ?? .null,
            cursor.map { .integer($0.rowID) } ?? .null,
            .integer(Int64(limit)), .integer(retries ? 1 : 0),
        ]) { Self.dueDelivery($0) }
    }

    public func unschedulable(limit: Int) throws -> [DueDelivery] {
        // Two seeks at the ends of Keysat's pending index: every time begins with a digit, so
        // what sorts before '0' (numbers first) is not one, and nothing this project or Keysat
        // writes is due after 2099, so what sorts from '21' on ('5', 'soon', a Julian day
        // '2461380.7', blobs last) is not one either. Text that begins like a time and sorts
        // between now and 2100 becomes due when its text comes, and is caught then. Two
        // statements: with an OR (or ORDER BY rowid) SQLite scans the whole index, or the table
        // (an idle run took 9 ms instead of 2.6 on 20,000 rows).
        var found: [DueDelivery] = []
        for range in ["d.next_attempt_at < '0'", "d.next_attempt_at >= '21'"] where found.count < limit {
            found += try database.prepare(
                Self.dueColumns + "\nWHERE d.delivered_at IS NULL AND \(range) LIMIT ?2"
            ).rows([.text(clock.now().rfc3339), .integer(Int64(limit - found.count))]) { Self.dueDelivery($0) }
        }
        return found
    }

    public func oldestPending(endpointID: String) throws -> DueDelivery? {
        try database.cached(
            Self.dueColumns + "\n" + """
                WHERE d.endpoint_id = ?2 AND \(DeliveryRecord.State.pending.condition())
                ORDER BY d.rowid LIMIT 1
                """
        ).first([.text(clock.now().rfc3339), .text(endpointID)]) { Self.dueDelivery($0) }
    }

    public func keyHead(endpointID: String, key: String, hold: Bool) throws -> DueDelivery? {
        try database.cached(
            Self.dueColumns + "\n" + """
                WHERE d.endpoint_id = ?2 AND d.keysat_webhooks_ordering_key = ?3
                  AND d.keysat_webhooks_sequence IS NOT NULL AND \(DeliveryRecord.State.pending.condition("d"))
                  AND (?4 = 0 OR NOT EXISTS (
                      SELECT 1 FROM webhook_deliveries AS o
                      WHERE o.endpoint_id = d.endpoint_id
                        AND o.keysat_webhooks_ordering_key = d.keysat_webhooks_ordering_key
                        AND o.delivered_at IS NULL AND o.keysat_webhooks_sequence < d.keysat_webhooks_sequence))
                ORDER BY d.keysat_webhooks_sequence LIMIT 1
                """
        ).first([.text(clock.now().rfc3339), .text(endpointID), .text(key), .integer(hold ? 1 : 0)]) {
            Self.dueDelivery($0)
        }
    }

    public func payload(of delivery: DueDelivery) throws -> [UInt8]? {
        try database.prepare("SELECT payload_json FROM webhook_deliveries WHERE rowid = ?1 AND id = ?2")
            .first([.integer(delivery.rowID), .text(delivery.id)]) { $0.bytes(0) ?? [] }
    }

    public func prepareToRecord() throws {
        try database.writeTransaction {
            try database.prepare(
                """
                INSERT INTO keysat_webhooks_state (name, value) VALUES ('recording_checked_at', ?)
                ON CONFLICT (name) DO UPDATE SET value = excluded.value
                """
            ).run([.text(clock.now().rfc3339)])
        }
    }

    public func eraseExpiredSecrets(now: Timestamp) throws -> Int {
        // A read first: most runs have nothing to erase and need no write transaction.
        let expired =
            try database.prepare(
                """
                SELECT EXISTS (SELECT 1 FROM webhook_endpoints
                    WHERE (previous_secret IS NOT NULL OR previous_signing_key IS NOT NULL)
                    AND (previous_secret_expires_at IS NULL OR previous_secret_expires_at <= ?))
                """
            ).first([.text(now.rfc3339)]) { $0.integer(0) == 1 } ?? false
        guard expired else { return 0 }
        let erased = try database.writeTransaction {
            try database.prepare(
                """
                UPDATE webhook_endpoints
                SET previous_secret = NULL, previous_signing_key = NULL, previous_secret_expires_at = NULL
                WHERE (previous_secret IS NOT NULL OR previous_signing_key IS NOT NULL)
                  AND (previous_secret_expires_at IS NULL OR previous_secret_expires_at <= ?)
                """
            ).run([.text(now.rfc3339)])
            return database.changes
        }
        if erased > 0 {
            // secure_delete zeroed the old bytes in the database pages; the WAL still holds
            // page images with them until it is checkpointed and truncated.
            try checkpointErasing()
        }
        return erased
    }

    public func record(_ outcomes: [AttemptOutcome]) throws {
        guard !outcomes.isEmpty else { return }
        var summaries = AttemptSummaries()
        try database.writeTransaction {
            let statements = try OutcomeStatements(database)
            var defective: Statement?
            // Ids near the top of the range (a row someone else wrote) leave no room: SQLite then
            // picks the ids, and those first attempts stay unnumbered (found by delivery id).
            let maxID =
                try database.prepare("SELECT coalesce(max(id), 0) FROM webhook_delivery_attempts")
                .first { $0.integer(0) ?? 0 } ?? 0
            var nextID: Int? = maxID < Int.max - outcomes.count ? maxID + 1 : nil
            // Dead-lettered by this batch, announced after it (`announceDead`), in its transaction.
            var dead: [String] = []
            for outcome in outcomes {
                if let fingerprint = outcome.fingerprint {
                    defective = try defective ?? OutcomeStatements.defective(database)
                    try defective?.run([
                        .integer(outcome.rowID), .text(fingerprint), .optional(outcome.error),
                    ])
                    continue
                }
                let byRowID = outcome.rowID > 0
                try (byRowID ? statements.rowByRowID : statements.rowByID).run(
                    outcome.rowValues(nextID: nextID))
                // A row re-queued or finished by someone else meanwhile keeps its new state.
                guard database.changes == 1 else { continue }
                summaries.add(outcome)
                if outcome.announcedDead { dead.append(outcome.deliveryID) }
                let attempt = outcome.attemptValues(nextID: nextID)
                if byRowID {
                    try statements.attemptByRowID.run(attempt + [.integer(outcome.rowID)])
                } else {
                    try statements.attemptByID.run(attempt)
                }
                nextID = nextID.map { $0 + 1 }
            }
            try write(summaries)
            announceDead(dead)
        }
    }
}

/// The statements `record` runs for each outcome: the row's update and the attempt's insert,
/// each by rowid when known (an integer seek) or by id; the id must match either way.
///
/// A delivery's first attempt gives it its history number: that attempt's own id, chosen by
/// `record` (the next one; its transaction is the only writer), so ids and numbers grow with
/// time and every new attempt goes to the end of the history's index.
private struct OutcomeStatements {
    let rowByID: Statement
    let rowByRowID: Statement
    let attemptByID: Statement
    let attemptByRowID: Statement

    /// Dead-letters a row that cannot be sent as it stands (`DeliveryRowCheck`), if it still
    /// holds what was read; its count made one a dead row has (at least 1), the reason in
    /// `last_error` saying what it was. Prepared only when a batch has such a row.
    static func defective(_ database: Database) throws -> Statement {
        try database.prepare(
            """
            UPDATE webhook_deliveries SET next_attempt_at = NULL, last_error = ?3,
                attempt_count = CASE WHEN typeof(attempt_count) = 'integer'
                    AND attempt_count BETWEEN 1 AND \(DeliveryRowCheck.maximumAttemptCount)
                    THEN attempt_count ELSE 1 END
            WHERE rowid = ?1 AND delivered_at IS NULL AND \(DeliveryRowCheck.fingerprintSQL) = ?2
            """)
    }

    init(_ database: Database) throws {
        let set = """
            UPDATE webhook_deliveries
            SET attempt_count = attempt_count + 1, last_status_code = ?2, last_error = ?3,
                delivered_at = ?4, next_attempt_at = ?5,
                keysat_webhooks_history = coalesce(keysat_webhooks_history, ?8)
            """
        // ?9: Keysat's rule for a disabled endpoint, written only while it is still not active
        // (`EndpointRecovery.needsEndpointStillInactive`; SQLite's writers take turns, so the
        // check and the write are one moment).
        let stillInactive = """
             AND (?9 IS NULL OR NOT EXISTS (SELECT 1 FROM webhook_endpoints AS e
                                           WHERE e.id = webhook_deliveries.endpoint_id AND e.active IS 1))
            """
        rowByID = try database.prepare(
            set + " WHERE id = ?1 AND attempt_count = ?6 AND delivered_at IS NULL" + stillInactive)
        rowByRowID = try database.prepare(
            set + " WHERE rowid = ?7 AND id = ?1 AND attempt_count = ?6 AND delivered_at IS NULL" + stillInactive)
        // The number as the row now has it (the one just set, or an earlier attempt's).
        let insert = """
            INSERT INTO webhook_delivery_attempts
                (id, delivery_id, attempt_number, started_at, duration_ms, status_code, error, response_body,
                 history_id)
            SELECT ?8, ?1, ?2, ?3, ?4, ?5, ?6, ?7, keysat_webhooks_history FROM webhook_deliveries
            """
        attemptByID = try database.prepare(insert + " WHERE id = ?1")
        attemptByRowID = try database.prepare(insert + " WHERE rowid = ?9 AND id = ?1")
    }
}

extension AttemptOutcome {
    /// ?1–?9 of `OutcomeStatements.rowByID`/`rowByRowID`.
    fileprivate func rowValues(nextID: Int?) -> [SQLValue] {
        let delivered: SQLValue
        let next: SQLValue
        switch result {
        case .delivered:
            delivered = .text(finishedAt.rfc3339)
            next = .null
        case .retry(let at):
            delivered = .null
            next = .text(at.rfc3339)
        case .dead:
            delivered = .null
            next = .null
        }
        return [
            .text(deliveryID), .optional(statusCode), .optional(error), delivered, next,
            .integer(Int64(previousAttemptCount)), .integer(rowID), .optional(nextID),
            EndpointRecovery.needsEndpointStillInactive(self) ? .integer(1) : .null,
        ]
    }

    /// ?1–?8 of `OutcomeStatements.attemptByID` (`attemptByRowID` takes the rowid as ?9).
    fileprivate func attemptValues(nextID: Int?) -> [SQLValue] {
        let excerpt = Array(responseExcerpt.prefix(1024))
        return [
            .text(deliveryID), .integer(Int64(previousAttemptCount + 1)), .text(startedAt.rfc3339),
            .integer((finishedAt.microseconds - startedAt.microseconds) / 1000),
            .optional(statusCode), .optional(error),
            excerpt.isEmpty ? .null : .text(String(decoding: excerpt, as: UTF8.self)),
            .optional(nextID),
        ]
    }
}
