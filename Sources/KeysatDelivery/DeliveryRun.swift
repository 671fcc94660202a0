public import KeysatStore

/// One keysat-deliver run: every delivery due at `t0` attempted at most once, every outcome
/// recorded, within the limits of `DeliveryOptions`.
public final class DeliveryRun {
    private let queue: any DeliveryQueue
    private let options: DeliveryOptions
    private let clock: any Clock
    private let logger: Logger
    private let stop: () -> Bool

    /// - Parameters:
    ///   - queue: where due deliveries come from and outcomes go.
    ///   - logger: gets one warning per delivery dead-lettered in this run, and at debug level
    ///     one line per attempt.
    ///   - stop: asked often; once it says `true`, no new attempt starts (SIGTERM).
    public init(
        queue: any DeliveryQueue, options: DeliveryOptions, clock: any Clock, logger: Logger,
        stop: @escaping () -> Bool = { false }
    ) {
        self.queue = queue
        self.options = options
        self.clock = clock
        self.logger = logger
        self.stop = stop
    }

    /// The deliveries a run at `t0` would attempt, first attempts then retries; nothing is
    /// sent or changed.
    public func due(at t0: Timestamp) throws -> [DueDelivery] {
        var result: [DueDelivery] = []
        let limit = options.limit ?? Int.max
        for retries in [false, true] {
            var cursor: DueCursor?
            while result.count < limit {
                let page = try queue.dueDeliveries(
                    dueBy: t0, retries: retries, after: cursor,
                    limit: min(options.pageSize, limit - result.count))
                result += page
                guard let last = page.last, page.count == options.pageSize else { break }
                cursor = DueCursor(nextAttemptAt: last.nextAttemptAt, rowID: last.rowID)
            }
        }
        return result
    }

    /// Per-endpoint state within the run.
    private struct EndpointState {
        var inFlight = 0
        var transportFailures = 0
        var breakerOpen = false
        var failed = false
        var succeeded = false
        var disabled = false
    }

    /// Sends every delivery due at `t0` and records the outcomes.
    public func run(at t0: Timestamp) throws -> RunSummary {
        var summary = RunSummary()
        let erased = try queue.eraseExpiredSecrets(now: t0)
        if erased > 0 {
            logger.log(.info, "erased expired previous secrets", ["endpoints": String(erased)])
        }
        let engine = LazyEngine {
            try HTTPEngine(
                settings: HTTPEngine.Settings(
                    timeoutMS: Int(self.options.timeoutSeconds * 1000),
                    connectTimeoutMS: Int(self.options.connectTimeoutSeconds * 1000),
                    policy: self.options.policy, caFile: self.options.caFile,
                    httpsOnly: self.options.httpsOnly),
                maximumConnections: self.options.concurrency, clock: self.clock)
        }
        let due = DueQueue(queue: queue, t0: t0, pageSize: options.pageSize, bufferLimit: options.bufferLimit)
        var endpoints: [String: EndpointState] = [:]
        var inFlight: [Int: DueDelivery] = [:]
        // Payload bytes of the requests in flight: with the deferred payloads (DueDelivery), what
        // bounds the run's memory whatever the backlog and the payloads' size.
        var inFlightBytes = 0
        var nextTag = 0
        let keys = SigningKeys()
        var outcomes: [AttemptOutcome] = []
        var lastFlush = clock.now()
        let limit = options.limit ?? Int.max
        let deadline = options.maxRuntimeSeconds.map { t0.microseconds + Int64($0 * 1_000_000) }

        func flush() throws {
            try queue.record(outcomes)
            outcomes.removeAll(keepingCapacity: true)
            lastFlush = clock.now()
        }

        func finish(_ outcome: AttemptOutcome, _ delivery: DueDelivery) {
            let word: String
            switch outcome.result {
            case .delivered:
                summary.count(delivery.endpointID) { $0.delivered += 1 }
                endpoints[delivery.endpointID, default: EndpointState()].succeeded = true
                word = "delivered"
            case .retry:
                summary.count(delivery.endpointID) { $0.retryScheduled += 1 }
                endpoints[delivery.endpointID, default: EndpointState()].failed = true
                word = "retry_scheduled"
            case .dead:
                summary.count(delivery.endpointID) { $0.deadLettered += 1 }
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

        func disable(_ endpoint: String, reason: String) throws {
            endpoints[endpoint, default: EndpointState()].disabled = true
            guard try queue.disableEndpoint(id: endpoint, reason: reason) else { return }
            summary.endpointsDisabled += 1
            logger.log(.warn, "endpoint disabled", ["endpoint_id": endpoint, "reason": reason])
        }

        /// Asks about signals once per turn of the loop (a system call), not once per attempt.
        func checkSignals() {
            if summary.stoppedBy == nil && stop() { summary.stoppedBy = "signal" }
        }

        /// Whether a new attempt may start at all.
        func mayStart() -> Bool {
            if summary.stoppedBy != nil { return false }
            if let deadline, clock.now().microseconds >= deadline {
                summary.stoppedBy = "max-runtime"
            } else if summary.attempted >= limit {
                summary.stoppedBy = "limit"
            }
            return summary.stoppedBy == nil
        }

        /// An endpoint with transport failures in this run and no success since gets one probe at a time.
        func capacity(_ endpoint: String) -> Bool {
            let state = endpoints[endpoint] ?? EndpointState()
            if state.breakerOpen || chains.contains(endpoint) { return false }
            return state.inFlight < (state.transportFailures > 0 ? 1 : options.perEndpoint)
        }

        // Ordered endpoints are not served from the due pages but as chains: their oldest
        // pending delivery, if due, then the next once it is delivered or dead.
        var chains: Set<String> = []
        var chainAttempted: Set<String> = []
        var refusalsWarned: Set<String> = []

        /// A destination refused by the network policy is said once per endpoint and run: a run
        /// whose every receiver was refused must not look like a quiet, healthy one.
        func warnRefused(_ delivery: DueDelivery, address: String) {
            guard refusalsWarned.insert(delivery.endpointID).inserted else { return }
            logger.refusedDestination(endpointID: delivery.endpointID, url: delivery.url, address: address)
        }

        /// The next delivery of an ordered endpoint's chain, or `nil` when the chain stops here.
        func nextInChain(_ endpoint: String) throws -> DueDelivery? {
            try flush()
            guard let oldest = try queue.oldestPending(endpointID: endpoint),
                oldest.nextAttemptAt <= t0.rfc3339,
                !chainAttempted.contains(oldest.id)
            else { return nil }
            chainAttempted.insert(oldest.id)
            return oldest
        }

        /// Starts an attempt, or records at once why there can be none.
        func start(_ row: DueDelivery) throws {
            let endpoint = row.endpointID
            let usable = row.endpointActive && !(endpoints[endpoint]?.disabled ?? false)
            // A row deleted meanwhile (purged, or its endpoint removed) is neither sent nor counted.
            guard var delivery = usable ? try withPayload(row) : row else { return }
            summary.count(endpoint) { $0.attempted += 1 }
            guard usable, let url = delivery.url, let secret = delivery.secret else {
                let now = clock.now()
                finish(
                    AttemptOutcome(
                        deliveryID: delivery.id, previousAttemptCount: delivery.attemptCount, result: .dead,
                        statusCode: nil, error: "endpoint deleted or disabled", startedAt: now,
                        finishedAt: now,
                        requested: false), delivery)
                return
            }
            nextTag += 1
            inFlightBytes += delivery.payload.count
            endpoints[endpoint, default: EndpointState()].inFlight += 1
            try engine.get().start(
                HTTPRequest(
                    url: url,
                    headers: RequestHeaders.make(
                        for: delivery, secret: secret, timestamp: clock.now(), keys: keys),
                    body: delivery.payload, tag: nextTag))
            delivery.payload = []  // the engine holds the body; the run needs only the row's identity
            inFlight[nextTag] = delivery
        }

        /// Continues an ordered endpoint's chain after one of its deliveries finished or was dropped.
        func continueChain(_ endpoint: String) throws {
            while mayStart(), engine.inFlight < options.concurrency, let next = try nextInChain(endpoint) {
                try start(next)
                if inFlight.values.contains(where: { $0.endpointID == endpoint }) { return }
                // Recorded at once (disabled endpoint): go on with the next one.
            }
        }

        while true {
            checkSignals()  // also while every slot is busy
            try due.fill()
            while engine.inFlight < options.concurrency,
                engine.inFlight == 0 || inFlightBytes < options.inFlightByteBudget, mayStart(),
                let delivery = due.next(where: capacity)
            {
                if delivery.ordered {
                    _ = due.drop(delivery.endpointID)
                    chains.insert(delivery.endpointID)
                    try continueChain(delivery.endpointID)
                } else {
                    try start(delivery)
                }
                try due.fill()
            }
            if engine.inFlight == 0 && (due.isEmpty && due.exhausted || summary.stoppedBy != nil) { break }
            for result in try engine.poll(timeoutMS: 100) {  // returns at once while no request was made
                guard let delivery = inFlight.removeValue(forKey: result.tag) else { continue }
                inFlightBytes -= result.requestBytes
                let endpoint = delivery.endpointID
                endpoints[endpoint, default: EndpointState()].inFlight -= 1
                if let address = result.refusedAddress { warnRefused(delivery, address: address) }
                var attempt = outcome(of: result, for: delivery)
                if result.status == 410 {
                    // The receiver says it wants no more: stop now, as Standard Webhooks advises.
                    attempt.result = .dead
                    if !(endpoints[endpoint]?.disabled ?? false) {
                        try disable(endpoint, reason: "receiver answered 410 Gone")
                    }
                }
                if result.status == nil {
                    endpoints[endpoint, default: EndpointState()].transportFailures += 1
                    if endpoints[endpoint]!.transportFailures >= options.breaker
                        && !endpoints[endpoint]!.breakerOpen
                    {
                        endpoints[endpoint]!.breakerOpen = true
                        let skipped = due.drop(endpoint)
                        summary.count(endpoint) { $0.skipped += skipped }
                        logger.log(
                            .info, "circuit breaker opened",
                            [
                                "endpoint_id": endpoint, "failures": String(options.breaker),
                                "skipped": String(skipped),
                            ])
                    }
                } else {
                    endpoints[endpoint, default: EndpointState()].transportFailures = 0
                }
                finish(attempt, delivery)
                if delivery.ordered, case .retry = attempt.result {
                    continue  // a failure holds back the newer deliveries
                }
                if delivery.ordered { try continueChain(endpoint) }
            }
            // Rows read after the breaker opened are skipped as they come; ordered ones wait for their chain.
            for (endpoint, state) in endpoints where state.breakerOpen {
                let skipped = due.drop(endpoint)
                if skipped > 0 { summary.count(endpoint) { $0.skipped += skipped } }
            }
            for endpoint in chains { _ = due.drop(endpoint) }
            let now = clock.now()
            if outcomes.count >= options.flushBatch
                || (!outcomes.isEmpty
                    && now.microseconds - lastFlush.microseconds >= options.commitIntervalMS * 1000)
            {
                try flush()
            }
        }
        try flush()
        if options.disableAfterSeconds > 0 {
            let now = clock.now()
            for (endpoint, state) in endpoints.sorted(by: { $0.key < $1.key })
            where state.failed && !state.succeeded && !state.disabled {
                guard let since = try queue.failingSince(endpointID: endpoint),
                    now.microseconds - since.microseconds > options.disableAfterSeconds * 1_000_000
                else { continue }
                try disable(endpoint, reason: "every attempt failed since \(since.rfc3339)")
            }
        }
        summary.elapsedMS = Int((clock.now().microseconds - t0.microseconds) / 1000)
        return summary
    }

    /// `delivery` with its payload, read now if it was deferred (`DueDelivery.payloadDeferred`);
    /// `nil` when the row is gone.
    private func withPayload(_ delivery: DueDelivery) throws -> DueDelivery? {
        guard delivery.payloadDeferred else { return delivery }
        guard let payload = try queue.payload(of: delivery) else { return nil }
        var loaded = delivery
        loaded.payload = payload
        loaded.payloadDeferred = false
        return loaded
    }

    /// Turns an HTTP result into the row's next state.
    func outcome(of result: HTTPResult, for delivery: DueDelivery) -> AttemptOutcome {
        let attempt = delivery.attemptCount + 1
        let error: String?
        var state: AttemptOutcome.Result
        if let status = result.status, (200..<300).contains(status) {
            error = nil
            state = .delivered
        } else {
            if let status = result.status {
                let text = String(decoding: result.body.prefix(800), as: UTF8.self)
                // Keysat's own prefix, then the start of the body; an empty body says the status,
                // which would otherwise be nowhere in the message.
                error =
                    "non-2xx response: "
                    + (text.isEmpty ? "HTTP \(status), empty body" : String(text.prefix(200)))
            } else {
                error = "request error: " + (result.transportError ?? "unknown failure")
            }
            state = Backoff.result(afterFailedAttempt: attempt, now: result.finished)
            if case .retry(let at) = state, result.status == 429 || result.status == 503,
                let header = result.retryAfter
            {
                state = .retry(
                    at: RetryAfter.schedule(
                        backoff: at, requested: RetryAfter.moment(header, now: result.finished),
                        now: result.finished))
            }
        }
        var outcome = AttemptOutcome(
            deliveryID: delivery.id, previousAttemptCount: delivery.attemptCount, result: state,
            statusCode: result.status, error: error, startedAt: result.started, finishedAt: result.finished,
            responseExcerpt: Array(result.body.prefix(1024)))
        outcome.rowID = delivery.rowID
        return outcome
    }
}

/// The HTTP engine, made (and libcurl loaded) only when a run has a request to send: an idle
/// run never pays for it.
private final class LazyEngine {
    private let make: () throws -> HTTPEngine
    private var engine: HTTPEngine?

    init(_ make: @escaping () throws -> HTTPEngine) { self.make = make }

    func get() throws -> HTTPEngine {
        if let engine { return engine }
        let made = try make()
        engine = made
        return made
    }

    var inFlight: Int { engine?.inFlight ?? 0 }

    func poll(timeoutMS: Int) throws -> [HTTPResult] { try engine?.poll(timeoutMS: timeoutMS) ?? [] }
}
