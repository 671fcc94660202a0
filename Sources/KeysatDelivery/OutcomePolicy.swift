import KeysatCore
import KeysatStore

/// What a finished attempt means for its delivery and its endpoint: the one place where that
/// is decided. It reads the facts of an `HTTPResult` (status, failure, `Retry-After`, times)
/// and the endpoint's failure streak, and returns a `Decision`; the run only carries it out.
struct OutcomePolicy {
    /// Consecutive transport failures (no status line) after which the endpoint's breaker opens.
    var breaker: Int
    /// Uniform in [0, 1): where in its jitter a retry falls (tests pass their own).
    var unit: () -> Double = { Double.random(in: 0..<1) }

    /// What to do after one attempt.
    struct Decision {
        /// What the delivery's row and the attempt history get.
        var outcome: AttemptOutcome
        /// Disable the endpoint, for this reason (it answered 410 Gone).
        var disableReason: String?
        /// The endpoint's consecutive transport failures after this attempt.
        var transportFailures: Int
        /// The streak is at `breaker`: stop trying the endpoint in this run (if not stopped already).
        var tripBreaker: Bool
    }

    /// The decision for `result`, an attempt of `delivery` to an endpoint that had
    /// `transportFailures` consecutive transport failures before it.
    func decide(_ result: HTTPResult, for delivery: DueDelivery, transportFailures: Int) -> Decision {
        let streak = result.status == nil ? transportFailures + 1 : 0
        var decision = Decision(
            outcome: outcome(of: result, for: delivery), disableReason: nil, transportFailures: streak,
            tripBreaker: result.status == nil && streak >= breaker)
        if result.status == 410 {
            // The receiver says it wants no more: stop now, as Standard Webhooks advises.
            decision.outcome.result = .dead
            decision.disableReason = "receiver answered 410 Gone"
        }
        return decision
    }

    /// A delivery that cannot be sent at all (its endpoint was deleted or disabled): dead-lettered
    /// at `now` without a request.
    func unsendable(_ delivery: DueDelivery, at now: Timestamp) -> AttemptOutcome {
        var outcome = AttemptOutcome(
            deliveryID: delivery.id, previousAttemptCount: delivery.attemptCount, result: .dead,
            statusCode: nil, error: "endpoint deleted or disabled", startedAt: now, finishedAt: now,
            requested: false)
        outcome.rowID = delivery.rowID
        outcome.endpointID = delivery.endpointID
        outcome.claimToken = delivery.claimToken
        return outcome
    }

    /// The row's next state: delivered on 2xx; otherwise the next attempt of its endpoint's
    /// retry schedule, in force now (moved by `Retry-After` on 429 and 503), or dead after the
    /// schedule's last, with `last_error` saying why.
    func outcome(of result: HTTPResult, for delivery: DueDelivery) -> AttemptOutcome {
        let delivered = result.status.map { (200..<300).contains($0) } ?? false
        var state = AttemptOutcome.Result.delivered
        if !delivered {
            state = Backoff.result(
                afterFailedAttempt: delivery.attemptCount + 1, now: result.finished,
                schedule: delivery.settings.retrySchedule, jitterPercent: delivery.settings.retryJitterPercent,
                unit: unit)
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
            statusCode: result.status, error: delivered ? nil : Self.lastError(result),
            startedAt: result.started, finishedAt: result.finished,
            responseExcerpt: Array(result.body.prefix(1024)))
        outcome.rowID = delivery.rowID
        outcome.endpointID = delivery.endpointID
        outcome.claimToken = delivery.claimToken
        return outcome
    }

    /// `last_error` of a failed attempt: Keysat's own prefixes, then the start of the body or
    /// the failure; an empty body says the status, which would otherwise be nowhere in the message.
    static func lastError(_ result: HTTPResult) -> String {
        guard let status = result.status else {
            return "request error: " + (result.failure?.message ?? "unknown failure")
        }
        let text = String(decoding: result.body.prefix(800), as: UTF8.self)
        return "non-2xx response: " + (text.isEmpty ? "HTTP \(status), empty body" : String(text.prefix(200)))
    }
}
