public import KeysatCore

/// What one keysat-deliver run leaves for the next (table `keysat_webhooks_state`).
extension WebhookStore {
    /// Metrics-file failures not yet reported in a metrics file that was written.
    public struct MetricsFailures: Sendable, Equatable {
        /// Runs whose metrics file could not be written, in all.
        public var count: Int
        /// When the last of them ended.
        public var last: Timestamp?

        public init(count: Int, last: Timestamp?) {
            self.count = count
            self.last = last
        }
    }

    /// The metrics-file failures recorded so far.
    public func metricsFailures() throws -> MetricsFailures {
        let values = try database.prepare(
            "SELECT name, value FROM keysat_webhooks_state WHERE name IN ('metrics_failures', 'metrics_last_failure')"
        ).rows { ($0.string(0), $0.string(1)) }
        var result = MetricsFailures(count: 0, last: nil)
        for (name, value) in values {
            if name == "metrics_failures" { result.count = max(0, Int(value) ?? 0) }
            if name == "metrics_last_failure" { result.last = Timestamp(rfc3339: value) }
        }
        return result
    }

    /// Counts one more run that could not write its metrics file.
    public func recordMetricsFailure(at now: Timestamp) throws {
        try database.writeTransaction {
            let count = try metricsFailures().count
            let upsert = try database.prepare(
                "INSERT INTO keysat_webhooks_state (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value"
            )
            try upsert.run([.text("metrics_failures"), .text(String(count == Int.max ? count : count + 1))])
            try upsert.run([.text("metrics_last_failure"), .text(now.rfc3339)])
        }
    }
}
