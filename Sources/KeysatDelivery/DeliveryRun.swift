public import KeysatCore
public import KeysatStore

/// One keysat-deliver run: every delivery due at `t0` attempted at most once, every outcome
/// recorded, within the limits of `DeliveryOptions`.
///
/// The parts, each with one job: `DueBuffer` reads the due rows and hands them out in turn per
/// endpoint; `EndpointStates` holds each endpoint's cap, failure streak and breaker;
/// `OrderedChains` serves ordered endpoints; `OutcomePolicy` decides what each finished attempt
/// means; a `Transport` sends the requests; `DeliveryRound` is the loop that joins them.
public final class DeliveryRun {
    private let store: any DeliveryStore
    private let options: DeliveryOptions
    private let clock: any TimeSource
    private let logger: Logger
    private let stop: () -> Bool
    private let makeTransport: () throws -> any Transport
    /// Claims answered on a thread of their own, for a store whose claims cost a round trip.
    private let claims: BackgroundClaims?

    /// - Parameters:
    ///   - store: where due deliveries come from and outcomes go.
    ///   - logger: gets one warning per delivery dead-lettered in this run, and at debug level
    ///     one line per attempt.
    ///   - stop: asked often; once it says `true`, no new attempt starts (SIGTERM).
    public convenience init(
        store: any DeliveryStore, options: DeliveryOptions, clock: any TimeSource, logger: Logger,
        stop: @escaping () -> Bool = { false }, claims: BackgroundClaims? = nil
    ) {
        self.init(
            store: store, options: options, clock: clock, logger: logger, stop: stop, claims: claims,
            transport: {
                try HTTPEngine(
                    settings: HTTPEngine.Settings(
                        timeoutMS: DurationText.milliseconds(options.timeoutSeconds),
                        connectTimeoutMS: DurationText.milliseconds(options.connectTimeoutSeconds),
                        policy: options.policy, caFile: options.caFile, httpsOnly: options.httpsOnly),
                    maximumConnections: options.concurrency, clock: clock)
            })
    }

    /// - Parameter transport: makes the transport, once, when the run has a request to send.
    init(
        store: any DeliveryStore, options: DeliveryOptions, clock: any TimeSource, logger: Logger,
        stop: @escaping () -> Bool, claims: BackgroundClaims? = nil,
        transport: @escaping () throws -> any Transport
    ) {
        self.claims = claims
        self.store = store
        self.options = options
        self.clock = clock
        self.logger = logger
        self.stop = stop
        self.makeTransport = transport
    }

    /// The deliveries a run at `t0` would attempt, first attempts then retries; nothing is
    /// sent or changed.
    public func due(at t0: Timestamp) throws -> [DueDelivery] {
        var result: [DueDelivery] = []
        let limit = options.limit ?? Int.max
        for retries in [false, true] {
            var cursor: DueCursor?
            while result.count < limit {
                let page = try store.dueDeliveries(
                    dueBy: t0, retries: retries, after: cursor,
                    limit: min(options.pageSize, limit - result.count))
                result += page
                guard let last = page.last, page.count == options.pageSize else { break }
                cursor = DueCursor(after: last)
            }
        }
        return result
    }

    /// Sends every delivery due at `t0` and records the outcomes.
    public func run(at t0: Timestamp) throws -> RunSummary {
        let erased = try store.eraseExpiredSecrets(now: t0)
        if erased > 0 {
            logger.log(.info, "erased expired previous secrets", ["endpoints": String(erased)])
        }
        let round = DeliveryRound(
            store: store, options: options, clock: clock, logger: logger, stop: stop,
            transport: LazyTransport(makeTransport), t0: t0, claims: claims)
        return try round.run()
    }
}
