import KeysatCore

/// Endpoints' token buckets (`RateLimit`, `keysat_webhooks_rate_buckets`) on SQLite.
extension WebhookStore {
    /// Takes up to `wanted` tokens from the endpoint's bucket at this store's clock, and writes
    /// the bucket back, in one write transaction, before the requests they are for start: a run
    /// killed afterwards has used them, so the next run cannot send a burst on top of its
    /// requests. One statement pair per claim, and only for an endpoint with a limit.
    ///
    /// - Returns: how many were taken, and when fewer than `wanted`, the seconds until the next.
    func takeRateTokens(endpointID: String, limit: RateLimit, wanted: Int) throws -> (Int, Double?) {
        try database.writeTransaction {
            let now = clock.now().microseconds
            var ahead = false
            let stored = try database.prepare(
                "SELECT tokens, as_of FROM keysat_webhooks_rate_buckets WHERE endpoint_id = ?"
            ).first([.text(endpointID)]) { row -> RateBucket in
                // Another program may have written anything here: what is not a number and a
                // time is an empty bucket (`RateBucket.fromStored`).
                let tokens: Double?
                switch row.value(0) {
                case .real(let number): tokens = number
                case .integer(let number): tokens = Double(number)
                default: tokens = nil
                }
                let asOf = row.isText(1) ? Timestamp(rfc3339: row.string(1))?.microseconds : nil
                ahead = (asOf ?? now) > now
                return RateBucket.fromStored(tokens: tokens, asOf: asOf, now: now)
            }
            let bucket = stored ?? RateBucket.full(limit, at: now)
            let (taken, after, nextIn) = bucket.take(wanted, limit: limit, at: now)
            // Also when the stored time is ahead of the clock (it stepped back): counted as now,
            // it must be written as now, or the bucket would never refill until the clock
            // caught up with it.
            if taken > 0 || ahead {
                try database.prepare(
                    """
                    INSERT INTO keysat_webhooks_rate_buckets (endpoint_id, tokens, as_of) VALUES (?, ?, ?)
                    ON CONFLICT (endpoint_id) DO UPDATE SET tokens = excluded.tokens, as_of = excluded.as_of
                    """
                ).run([.text(endpointID), .real(after.tokens), .text(Timestamp(microseconds: after.asOf).rfc3339)])
            }
            return (taken, nextIn)
        }
    }
}
