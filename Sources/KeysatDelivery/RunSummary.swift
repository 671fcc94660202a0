import KeysatCore
import KeysatStore

/// Why a run stopped before attempting everything due.
public enum StopReason: String, Sendable {
    /// SIGTERM or SIGINT: no new attempt started after it.
    case signal
    /// `--max-runtime` ran out.
    case maxRuntime = "max-runtime"
    /// `--limit` attempts were made.
    case limit
}

/// Counts of one run, in all and per endpoint.
public struct RunSummary: Sendable, Equatable {
    public struct Counts: Sendable, Equatable {
        public var attempted = 0
        public var delivered = 0
        public var retryScheduled = 0
        public var deadLettered = 0
        /// Due deliveries left untouched because the endpoint's circuit breaker opened.
        public var skipped = 0
        /// Due deliveries left to a later run because the endpoint's rate limit had no token
        /// for them soon enough (`RateLimit.longestWaitSeconds`).
        public var rateLimited = 0

        public init() {}

        mutating func add(_ other: Counts) {
            attempted += other.attempted
            delivered += other.delivered
            retryScheduled += other.retryScheduled
            deadLettered += other.deadLettered
            skipped += other.skipped
            rateLimited += other.rateLimited
        }

        var jsonMembers: [(String, String)] {
            [
                ("attempted", String(attempted)), ("delivered", String(delivered)),
                ("retry_scheduled", String(retryScheduled)), ("dead_lettered", String(deadLettered)),
                ("skipped", String(skipped)), ("rate_limited", String(rateLimited)),
            ]
        }
    }

    public var total = Counts()
    public var endpoints: [String: Counts] = [:]
    /// Endpoints this run disabled (failing too long, or 410 Gone).
    public var endpointsDisabled = 0
    /// Endpoints this run enabled again (a probe answered 2xx).
    public var endpointsRecovered = 0
    /// Why the run stopped before attempting everything due, if it did.
    public var stoppedBy: StopReason?
    public var elapsedMS = 0
    /// Rounds made: more than one when events were kicked during the run.
    public var rounds = 0

    public init() {}

    public var attempted: Int { total.attempted }
    public var delivered: Int { total.delivered }
    public var retryScheduled: Int { total.retryScheduled }
    public var deadLettered: Int { total.deadLettered }
    public var skipped: Int { total.skipped }
    public var rateLimited: Int { total.rateLimited }

    /// Adds a round's counts to these.
    mutating func merge(_ round: RunSummary) {
        total.add(round.total)
        for (endpoint, counts) in round.endpoints { endpoints[endpoint, default: Counts()].add(counts) }
        endpointsDisabled += round.endpointsDisabled
        endpointsRecovered += round.endpointsRecovered
        stoppedBy = round.stoppedBy
    }

    mutating func count(_ endpoint: String, _ change: (inout Counts) -> Void) {
        change(&total)
        change(&endpoints[endpoint, default: Counts()])
    }

    /// The `--json` summary.
    public var json: String {
        let perEndpoint = endpoints.keys.sorted().map {
            (JSONText.string($0) + ":" + JSONText.object(endpoints[$0]!.jsonMembers))
        }
        return JSONText.object(
            total.jsonMembers + [
                ("endpoints_disabled", String(endpointsDisabled)),
                ("endpoints_recovered", String(endpointsRecovered)),
                ("stopped_by", JSONText.string(stoppedBy?.rawValue)), ("rounds", String(rounds)),
                ("elapsed_ms", String(elapsedMS)),
                ("endpoints", "{" + perEndpoint.joined(separator: ",") + "}"),
            ])
    }
}
