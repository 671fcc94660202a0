public import KeysatCore
public import KeysatStore

/// When a failed delivery is tried again.
///
/// After the n-th failed attempt: 5 s, 10 s, 30 s, 1 min, 5 min, 15 min, 30 min, 1 h, 2 h;
/// the 10th failure dead-letters the delivery.
public enum Backoff {
    /// Delays in seconds after failed attempts 1 through 9.
    public static let delays: [Int64] = [5, 10, 30, 60, 300, 900, 1800, 3600, 7200]

    /// Attempts made before a delivery is given up on.
    public static var maximumAttempts: Int { delays.count + 1 }

    /// The delay after failed attempt number `attempt` (1-based), or `nil` when it was the last.
    public static func delay(afterAttempt attempt: Int) -> Int64? {
        guard attempt >= 1, attempt <= delays.count else { return nil }
        return delays[attempt - 1]
    }

    /// The outcome for a failure of attempt number `attempt` that ended at `now`.
    public static func result(afterFailedAttempt attempt: Int, now: Timestamp) -> AttemptOutcome.Result {
        guard let delay = delay(afterAttempt: attempt) else { return .dead }
        return .retry(at: now.adding(seconds: delay))
    }
}
