public import KeysatStore

/// How a run behaves; the defaults are keysat-deliver's.
public struct DeliveryOptions: Sendable {
    /// Requests in flight at once.
    public var concurrency = 16
    /// Whole-attempt timeout.
    public var timeoutSeconds = 10.0
    public var connectTimeoutSeconds = 5.0
    /// Attempt at most this many deliveries in this run.
    public var limit: Int?
    /// Due rows read per query.
    public var pageSize = 256
    /// Outcomes are committed in batches of this many, or at least once a second.
    public var flushBatch = 500
    /// Which destination addresses may be connected to.
    public var policy = NetworkPolicy()
    /// A CA bundle to trust for TLS instead of the system's.
    public var caFile: String?
    /// Refuse plain http.
    public var httpsOnly = false
    /// Disable an endpoint whose attempts have all failed for longer than this (0: never).
    public var disableAfterSeconds: Int64 = 5 * 86_400

    public init() {}
}

/// Counts of one run.
public struct RunSummary: Sendable, Equatable {
    public var attempted = 0
    public var delivered = 0
    public var retryScheduled = 0
    public var deadLettered = 0
    /// Due deliveries this run left untouched (their endpoint's circuit breaker was open).
    public var skipped = 0
    /// Endpoints this run disabled (failing too long, or 410 Gone).
    public var endpointsDisabled = 0
    public var elapsedMS = 0

    public init() {}

    /// The `--json` summary.
    public var json: String {
        JSONText.object([
            ("attempted", String(attempted)), ("delivered", String(delivered)),
            ("retry_scheduled", String(retryScheduled)), ("dead_lettered", String(deadLettered)),
            ("skipped", String(skipped)), ("endpoints_disabled", String(endpointsDisabled)),
            ("elapsed_ms", String(elapsedMS)),
        ])
    }
}

/// One keysat-deliver run: every delivery due at `t0` attempted once, every outcome recorded.
public final class DeliveryRun {
    private let queue: any DeliveryQueue
    private let options: DeliveryOptions
    private let clock: any Clock
    private let logger: Logger

    /// - Parameters:
    ///   - queue: where due deliveries come from and outcomes go.
    ///   - logger: gets one warning per delivery dead-lettered in this run, and at debug level
    ///     one line per attempt.
    public init(queue: any DeliveryQueue, options: DeliveryOptions, clock: any Clock, logger: Logger) {
        self.queue = queue
        self.options = options
        self.clock = clock
        self.logger = logger
    }

    /// The deliveries a run at `t0` would attempt, in order; nothing is sent or changed.
    public func due(at t0: Timestamp) throws -> [DueDelivery] {
        var result: [DueDelivery] = []
        var cursor: DueCursor?
        let limit = options.limit ?? Int.max
        while result.count < limit {
            let page = try queue.dueDeliveries(
                dueBy: t0, after: cursor, limit: min(options.pageSize, limit - result.count))
            result += page
            guard let last = page.last, page.count == options.pageSize else { break }
            cursor = DueCursor(nextAttemptAt: last.nextAttemptAt, id: last.id)
        }
        return result
    }

    /// Sends every delivery due at `t0` and records the outcomes.
    public func run(at t0: Timestamp) throws -> RunSummary {
        var summary = RunSummary()
        let erased = try queue.eraseExpiredSecrets(now: t0)
        if erased > 0 {
            logger.log(.info, "erased expired previous secrets", ["endpoints": String(erased)])
        }
        let engine = try HTTPEngine(
            settings: HTTPEngine.Settings(
                timeoutMS: Int(options.timeoutSeconds * 1000),
                connectTimeoutMS: Int(options.connectTimeoutSeconds * 1000),
                policy: options.policy, caFile: options.caFile, httpsOnly: options.httpsOnly),
            maximumConnections: options.concurrency, clock: clock)
        var page: [DueDelivery] = []
        var pageIndex = 0
        var cursor: DueCursor?
        var exhausted = false
        var inFlight: [Int: DueDelivery] = [:]
        var nextTag = 0
        var outcomes: [AttemptOutcome] = []
        var lastFlush = clock.now()
        let limit = options.limit ?? Int.max
        // Endpoints whose attempts failed in this run, and those disabled during it.
        var failedEndpoints: Set<String> = []
        var succeededEndpoints: Set<String> = []
        var disabled: Set<String> = []

        func nextDue() throws -> DueDelivery? {
            if pageIndex == page.count {
                guard !exhausted else { return nil }
                page = try queue.dueDeliveries(dueBy: t0, after: cursor, limit: options.pageSize)
                pageIndex = 0
                exhausted = page.count < options.pageSize
                guard let last = page.last else { return nil }
                cursor = DueCursor(nextAttemptAt: last.nextAttemptAt, id: last.id)
            }
            pageIndex += 1
            return page[pageIndex - 1]
        }

        func finish(_ outcome: AttemptOutcome, _ delivery: DueDelivery) {
            let word: String
            switch outcome.result {
            case .delivered:
                summary.delivered += 1
                succeededEndpoints.insert(delivery.endpointID)
                word = "delivered"
            case .retry:
                summary.retryScheduled += 1
                failedEndpoints.insert(delivery.endpointID)
                word = "retry_scheduled"
            case .dead:
                summary.deadLettered += 1
                word = "dead_lettered"
                logger.log(
                    .warn, "delivery dead-lettered",
                    [
                        "delivery_id": delivery.id, "endpoint_id": delivery.endpointID,
                        "event_type": delivery.eventType, "attempts": String(delivery.attemptCount + 1),
                        "last_error": outcome.error ?? "",
                    ])
            }
            if logger.enabled(.debug) {
                logger.log(
                    .debug, "attempt",
                    [
                        "delivery_id": delivery.id, "endpoint_id": delivery.endpointID,
                        "attempt": String(delivery.attemptCount + 1), "outcome": word,
                        "status": outcome.statusCode.map(String.init) ?? "-",
                        "duration_ms": String(
                            (outcome.finishedAt.microseconds - outcome.startedAt.microseconds) / 1000),
                        "error": outcome.error ?? "",
                    ])
            }
            outcomes.append(outcome)
        }

        while true {
            while engine.inFlight < options.concurrency, summary.attempted < limit,
                let delivery = try nextDue()
            {
                summary.attempted += 1
                guard delivery.endpointActive, !disabled.contains(delivery.endpointID),
                    let url = delivery.url,
                    let secret = delivery.secret
                else {
                    let now = clock.now()
                    finish(
                        AttemptOutcome(
                            deliveryID: delivery.id, previousAttemptCount: delivery.attemptCount,
                            result: .dead,
                            statusCode: nil, error: "endpoint deleted or disabled", startedAt: now,
                            finishedAt: now,
                            requested: false), delivery)
                    continue
                }
                nextTag += 1
                inFlight[nextTag] = delivery
                try engine.start(
                    HTTPRequest(
                        url: url,
                        headers: RequestHeaders.make(for: delivery, secret: secret, timestamp: clock.now()),
                        body: delivery.payload,
                        tag: nextTag))
            }
            if engine.inFlight == 0 { break }
            for result in try engine.poll(timeoutMS: 1000) {
                guard let delivery = inFlight.removeValue(forKey: result.tag) else { continue }
                var attempt = outcome(of: result, for: delivery)
                if result.status == 410 {
                    // The receiver says it wants no more: stop now, as Standard Webhooks advises.
                    attempt.result = .dead
                    if !disabled.contains(delivery.endpointID) {
                        disabled.insert(delivery.endpointID)
                        try disable(delivery.endpointID, reason: "receiver answered 410 Gone", &summary)
                    }
                }
                finish(attempt, delivery)
            }
            let now = clock.now()
            if outcomes.count >= options.flushBatch || now.microseconds - lastFlush.microseconds >= 1_000_000
            {
                try queue.record(outcomes)
                outcomes.removeAll(keepingCapacity: true)
                lastFlush = now
            }
        }
        try queue.record(outcomes)
        if options.disableAfterSeconds > 0 {
            let now = clock.now()
            for endpoint in failedEndpoints.subtracting(succeededEndpoints).subtracting(disabled).sorted() {
                guard let since = try queue.failingSince(endpointID: endpoint),
                    now.microseconds - since.microseconds > options.disableAfterSeconds * 1_000_000
                else { continue }
                try disable(endpoint, reason: "every attempt failed since \(since.rfc3339)", &summary)
            }
        }
        summary.elapsedMS = Int((clock.now().microseconds - t0.microseconds) / 1000)
        return summary
    }

    private func disable(_ endpoint: String, reason: String, _ summary: inout RunSummary) throws {
        guard try queue.disableEndpoint(id: endpoint, reason: reason) else { return }
        summary.endpointsDisabled += 1
        logger.log(.warn, "endpoint disabled", ["endpoint_id": endpoint, "reason": reason])
    }

    /// Turns an HTTP result into the row's next state.
    func outcome(of result: HTTPResult, for delivery: DueDelivery) -> AttemptOutcome {
        let attempt = delivery.attemptCount + 1
        let error: String?
        let state: AttemptOutcome.Result
        if let status = result.status, (200..<300).contains(status) {
            error = nil
            state = .delivered
        } else {
            if result.status != nil {
                let text = String(decoding: result.body.prefix(800), as: UTF8.self)
                error = "non-2xx response: " + String(text.prefix(200))
            } else {
                error = "request error: " + (result.transportError ?? "unknown failure")
            }
            state = Backoff.result(afterFailedAttempt: attempt, now: result.finished)
        }
        return AttemptOutcome(
            deliveryID: delivery.id, previousAttemptCount: delivery.attemptCount, result: state,
            statusCode: result.status, error: error, startedAt: result.started, finishedAt: result.finished,
            responseExcerpt: Array(result.body.prefix(1024)))
    }
}

/// The headers of a webhook request.
public enum RequestHeaders {
    /// `Content-Type`, the Keysat signature (and the previous secret's during a rotation),
    /// event and delivery id (stable across retries), and the Standard Webhooks headers.
    ///
    /// - Parameter timestamp: the attempt's time, signed into `webhook-signature`.
    public static func make(for delivery: DueDelivery, secret: String, timestamp: Timestamp) -> [String] {
        let id = headerSafe(delivery.id)
        var headers = [
            "Content-Type: application/json",
            "X-Keysat-Signature: " + Signature.keysatHeaderValue(secret: secret, body: delivery.payload),
        ]
        if let previous = delivery.previousSecret {
            headers.append(
                "X-Keysat-Previous-Signature: "
                    + Signature.keysatHeaderValue(secret: previous, body: delivery.payload))
        }
        headers += [
            "X-Keysat-Event: " + headerSafe(delivery.eventType),
            "X-Keysat-Delivery: " + id,
            "webhook-id: " + id,
            "webhook-timestamp: " + String(timestamp.seconds),
        ]
        // The new secret's signature first, as the specification asks during a rotation.
        let signatures = ([secret] + (delivery.previousSecret.map { [$0] } ?? [])).map {
            StandardWebhooks.signature(
                key: Array($0.utf8), id: id, timestamp: timestamp.seconds, body: delivery.payload)
        }
        headers.append("webhook-signature: " + signatures.joined(separator: " "))
        return headers
    }

    /// A value without control characters: rows written by other programs cannot add header lines.
    static func headerSafe(_ value: String) -> String {
        String(String.UnicodeScalarView(value.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }))
    }
}
