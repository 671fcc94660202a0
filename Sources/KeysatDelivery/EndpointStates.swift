import KeysatCore

/// What a run knows of each endpoint it has touched: requests in flight, the streak of
/// transport failures, the breaker, and how its attempts went.
struct EndpointStates {
    struct State {
        var inFlight = 0
        /// Claimed by this run and waiting for a slot (`DeliveryRound`'s claims ahead): they
        /// count against the endpoint's cap as its attempts in flight do.
        var ready = 0
        /// What the endpoint's cap is measured against: attempts in flight and claims waiting.
        var held: Int { inFlight + ready }
        var transportFailures = 0
        var breakerOpen = false
        var failed = false
        var succeeded = false
        var disabled = false
        /// Other runs have the rest of its slots (a claim answered busy while this run had
        /// attempts of it in flight): no new attempt until one of those ends.
        var full = false
        /// Its rate limit's next token is too far away (`RateLimit.longestWaitSeconds`): its
        /// deliveries are left to a later run.
        var rateDeferred = false
    }

    /// Requests in flight to one endpoint at most (one while it has transport failures).
    let perEndpoint: Int
    private var states: [String: State] = [:]
    /// Endpoints waiting for their rate limit's next token, and when it comes (monotonic
    /// clock): no new attempt until then. Empty unless an endpoint has a limit.
    private(set) var waitingForTokens: [String: Int64] = [:]

    init(perEndpoint: Int) { self.perEndpoint = perEndpoint }

    subscript(endpoint: String) -> State { states[endpoint] ?? State() }

    /// Whether another request to `endpoint` may start: its breaker is closed and it is under
    /// its cap. An endpoint with transport failures in this run and no success since gets one
    /// probe at a time.
    func hasRoom(_ endpoint: String) -> Bool {
        guard let state = states[endpoint] else { return perEndpoint > 0 }
        if state.breakerOpen || state.full || state.rateDeferred || waitingForTokens[endpoint] != nil { return false }
        return state.held < (state.transportFailures > 0 ? 1 : perEndpoint)
    }

    /// Notes that other runs have the rest of `endpoint`'s slots (see `State.full`).
    mutating func markFull(_ endpoint: String) { states[endpoint, default: State()].full = true }

    /// How many more requests to `endpoint` may start now (0 when its breaker is open).
    func room(_ endpoint: String) -> Int {
        guard let state = states[endpoint] else { return max(perEndpoint, 0) }
        if state.breakerOpen || state.full || state.rateDeferred || waitingForTokens[endpoint] != nil { return 0 }
        return max(0, (state.transportFailures > 0 ? 1 : perEndpoint) - state.held)
    }

    /// Notes that `endpoint`'s next token comes at `moment` (monotonic clock).
    mutating func waitForTokens(_ endpoint: String, until moment: Int64) {
        states[endpoint, default: State()].rateDeferred = false
        waitingForTokens[endpoint] = moment
    }

    /// Notes that `endpoint`'s deliveries are left to a later run (see `State.rateDeferred`).
    mutating func deferForRate(_ endpoint: String) {
        states[endpoint, default: State()].rateDeferred = true
        waitingForTokens[endpoint] = nil
    }

    /// When the first of the awaited tokens comes, if any endpoint waits for one.
    var nextToken: Int64? { waitingForTokens.values.min() }

    /// Ends the waits whose token has come by `now`; returns those endpoints.
    mutating func tokensCame(by now: Int64) -> [String] {
        let came = waitingForTokens.filter { $0.value <= now }.keys.sorted()
        for endpoint in came { waitingForTokens[endpoint] = nil }
        return came
    }

    /// Endpoints left to a later run by their rate limit.
    var rateDeferred: [String] { states.compactMap { $0.value.rateDeferred ? $0.key : nil } }

    mutating func started(_ endpoint: String) { states[endpoint, default: State()].inFlight += 1 }

    /// Notes `count` claims of `endpoint` waiting for a slot (negative: no longer waiting).
    mutating func waiting(_ endpoint: String, _ count: Int) { states[endpoint, default: State()].ready += count }

    /// A request that never left this host (`HTTPResult.Failure.exhausted`): its slot freed, no
    /// decision taken about the endpoint.
    mutating func released(_ endpoint: String) {
        states[endpoint, default: State()].inFlight -= 1
        states[endpoint]?.full = false
    }

    /// Takes in the decision about one of `endpoint`'s attempts; `true` when its breaker opened now.
    mutating func finished(_ endpoint: String, _ decision: OutcomePolicy.Decision) -> Bool {
        var state = states[endpoint, default: State()]
        state.inFlight -= 1
        state.full = false
        state.transportFailures = decision.transportFailures
        switch decision.outcome.result {
        case .delivered: state.succeeded = true
        case .retry: state.failed = true
        case .dead: break
        }
        let opened = decision.tripBreaker && !state.breakerOpen
        if opened { state.breakerOpen = true }
        states[endpoint] = state
        return opened
    }

    /// Notes an attempt recorded without a request (its endpoint deleted or disabled).
    mutating func markDisabled(_ endpoint: String) { states[endpoint, default: State()].disabled = true }

    /// Endpoints whose breaker is open.
    var broken: [String] { states.compactMap { $0.value.breakerOpen ? $0.key : nil } }

    /// Endpoints, in id order, whose every attempt in this run failed and that are still enabled:
    /// candidates for `--disable-after`.
    var failingThroughout: [String] {
        states.filter { $0.value.failed && !$0.value.succeeded && !$0.value.disabled }.keys.sorted()
    }
}
