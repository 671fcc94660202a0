public import KeysatCore
public import KeysatStore

/// When a failed delivery is tried again: its endpoint's `RetrySchedule`, Keysat's ladder by
/// default.
///
/// Keysat's: after the n-th failed attempt 5 s, 10 s, 30 s, 1 min, 5 min, 15 min, 30 min, 1 h,
/// 2 h; the 10th failure dead-letters the delivery.
public enum Backoff {
    /// Keysat's delays in seconds after failed attempts 1 through 9.
    public static var delays: [Int64] { RetrySchedule.keysat.delays }

    /// Attempts made before a delivery is given up on, on Keysat's ladder.
    public static var maximumAttempts: Int { RetrySchedule.keysat.maximumAttempts }

    /// The delay after failed attempt number `attempt` (1-based) on Keysat's ladder, or `nil`
    /// when it was the last.
    public static func delay(afterAttempt attempt: Int) -> Int64? {
        RetrySchedule.keysat.delay(afterAttempt: attempt)
    }

    /// The outcome for a failure of attempt number `attempt` that ended at `now`, on `schedule`
    /// with up to `jitterPercent` % of spread (`unit`: uniform in [0, 1), drawn only then).
    public static func result(
        afterFailedAttempt attempt: Int, now: Timestamp, schedule: RetrySchedule = .keysat, jitterPercent: Int = 0,
        unit: () -> Double = { Double.random(in: 0..<1) }
    ) -> AttemptOutcome.Result {
        guard let delay = schedule.delay(afterAttempt: attempt) else { return .dead }
        return .retry(at: RetrySchedule.next(after: now, delay: delay, jitterPercent: jitterPercent, unit: unit()))
    }
}
