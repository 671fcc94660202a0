import KeysatCore

/// The attempt history summarised per endpoint as it is written, so that `stats` and the
/// metrics file read a few rows instead of the history: each endpoint's last success, last
/// failure and failure streak (`keysat_webhooks_endpoint_health`), and its attempts and
/// successes per minute (`keysat_webhooks_attempt_minutes`, keyed by minute first, two days kept).
struct AttemptSummaries {
    /// One endpoint's part of a batch. Times are kept as timestamps and minutes as numbers, and
    /// made text once per endpoint when written: formatting each outcome's times and hashing
    /// text keys was 8,000 instructions per outcome (callgrind), a tenth of the commit's work.
    struct Health {
        var lastSuccess: Timestamp?
        var lastFailure: Timestamp?
        /// Failures after the last success in this batch (or in all, without one).
        var streak = 0
        var succeeded = false
        /// Minute (whole minutes since the epoch) → (attempts, successes).
        var minutes: [Int64: (Int, Int)] = [:]

        mutating func add(success: Bool, started: Timestamp, finished: Timestamp) {
            if success {
                lastSuccess = max(lastSuccess ?? finished, finished)
                streak = 0
                succeeded = true
            } else {
                lastFailure = max(lastFailure ?? started, started)
                streak += 1
            }
            let minute =
                started.microseconds >= 0
                ? started.microseconds / 60_000_000 : (started.microseconds - 59_999_999) / 60_000_000
            let counts = minutes[minute] ?? (0, 0)
            minutes[minute] = (counts.0 + 1, counts.1 + (success ? 1 : 0))
        }
    }

    var health: [String: Health] = [:]

    /// Takes in an outcome just written to the history.
    mutating func add(_ outcome: AttemptOutcome) {
        guard !outcome.endpointID.isEmpty else { return }
        let success = outcome.statusCode.map { (200..<300).contains($0) } ?? false
        health[outcome.endpointID, default: Health()].add(
            success: success, started: outcome.startedAt, finished: outcome.finishedAt)
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
                .text(endpoint), .optional(state.lastSuccess?.rfc3339), .optional(state.lastFailure?.rfc3339),
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
        for (endpoint, state) in summaries.health {
            for (minute, counts) in state.minutes {
                // "YYYY-MM-DDTHH:MM", the key `stats` reads.
                let text = String(Timestamp(microseconds: minute * 60_000_000).rfc3339.prefix(16))
                try minutes.run([
                    .text(endpoint), .text(text), .integer(Int64(counts.0)), .integer(Int64(counts.1)),
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
