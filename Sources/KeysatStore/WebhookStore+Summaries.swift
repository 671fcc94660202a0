import KeysatCore

/// The attempt history summarised per endpoint as it is written, so that `stats` and the
/// metrics file read a few rows instead of the history: each endpoint's last success, last
/// failure and failure streak (`keysat_webhooks_endpoint_health`), and its attempts and
/// successes per minute (`keysat_webhooks_attempt_minutes`, keyed by minute first, two days kept).
struct AttemptSummaries {
    struct Health {
        var lastSuccess: String?
        var lastFailure: String?
        /// Failures after the last success in this batch (or in all, without one).
        var streak = 0
        var succeeded = false
    }

    var health: [String: Health] = [:]
    /// (endpoint, minute) → (attempts, successes).
    var minutes: [String: [String: (Int, Int)]] = [:]

    /// Takes in an outcome just written to the history.
    mutating func add(_ outcome: AttemptOutcome) {
        guard !outcome.endpointID.isEmpty else { return }
        let success = outcome.statusCode.map { (200..<300).contains($0) } ?? false
        var state = health[outcome.endpointID, default: Health()]
        if success {
            state.lastSuccess = max(state.lastSuccess ?? "", outcome.finishedAt.rfc3339)
            state.streak = 0
            state.succeeded = true
        } else {
            state.lastFailure = max(state.lastFailure ?? "", outcome.startedAt.rfc3339)
            state.streak += 1
        }
        health[outcome.endpointID] = state
        let minute = String(outcome.startedAt.rfc3339.prefix(16))
        let counts = minutes[outcome.endpointID, default: [:]][minute] ?? (0, 0)
        minutes[outcome.endpointID, default: [:]][minute] = (counts.0 + 1, counts.1 + (success ? 1 : 0))
    }
}

extension WebhookStore {
    /// Writes the summaries of a batch of outcomes, in the transaction that wrote them.
    func write(_ summaries: AttemptSummaries) throws {
        guard !summaries.health.isEmpty else { return }
        try pruneAttemptMinutes()
        let health = try database.prepare(
            """
            INSERT INTO keysat_webhooks_endpoint_health (endpoint_id, last_success_at, last_failure_at, failure_streak)
            VALUES (?1, ?2, ?3, ?4)
            ON CONFLICT (endpoint_id) DO UPDATE SET
                last_success_at = coalesce(max(last_success_at, excluded.last_success_at), last_success_at, excluded.last_success_at),
                last_failure_at = coalesce(max(last_failure_at, excluded.last_failure_at), last_failure_at, excluded.last_failure_at),
                failure_streak = CASE WHEN ?5 THEN excluded.failure_streak ELSE failure_streak + excluded.failure_streak END
            """)
        for (endpoint, state) in summaries.health {
            try health.run([
                .text(endpoint), .optional(state.lastSuccess), .optional(state.lastFailure),
                .integer(Int64(state.streak)), .integer(state.succeeded ? 1 : 0),
            ])
        }
        let minutes = try database.prepare(
            """
            INSERT INTO keysat_webhooks_attempt_minutes (minute, endpoint_id, attempts, successes)
            VALUES (?2, ?1, ?3, ?4)
            ON CONFLICT (minute, endpoint_id) DO UPDATE SET
                attempts = attempts + excluded.attempts, successes = successes + excluded.successes
            """)
        for (endpoint, byMinute) in summaries.minutes {
            for (minute, counts) in byMinute {
                try minutes.run([
                    .text(endpoint), .text(minute), .integer(Int64(counts.0)), .integer(Int64(counts.1)),
                ])
            }
        }
    }

    /// Drops per-minute summaries older than two days (`stats` reads one day), within the
    /// caller's write transaction: a seek on the key's first column, at most once an hour per
    /// process.
    func pruneAttemptMinutes() throws {
        let now = clock.now()
        guard now.microseconds - lastMinutesPrune.microseconds >= 3_600_000_000 else { return }
        lastMinutesPrune = now
        try database.prepare("DELETE FROM keysat_webhooks_attempt_minutes WHERE minute < ?")
            .run([.text(String(now.adding(seconds: -2 * 86_400).rfc3339.prefix(16)))])
    }
}
