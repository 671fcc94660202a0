public import KeysatCore
public import KeysatStore

#if canImport(Glibc)
    import Glibc
#endif

/// The Prometheus text exposition written after each run, for node_exporter's textfile
/// collector. See <https://prometheus.io/docs/instrumenting/exposition_formats/>.
public struct MetricsFile {
    public let path: String

    public init(path: String) { self.path = path }

    /// Endpoints listed one by one at most; beyond that only the totals (label sets stay bounded).
    public static let maximumEndpoints = 100

    /// What a run knew when it ended.
    public struct Snapshot {
        public var runStarted: Timestamp
        public var runFinished: Timestamp
        /// `nil` when the run failed.
        public var summary: RunSummary?
        public var queue: WebhookStore.QueueCounts?
        public var endpoints: [WebhookStore.EndpointStats] = []
        /// Earlier runs that could not write this file.
        public var failures = WebhookStore.MetricsFailures(count: 0, last: nil)

        public init(runStarted: Timestamp, runFinished: Timestamp, summary: RunSummary?) {
            self.runStarted = runStarted
            self.runFinished = runFinished
            self.summary = summary
        }
    }

    /// The text being written, one metric family after another.
    struct Exposition {
        var text = ""

        mutating func metric(_ name: String, _ type: String, _ help: String, _ samples: [(String, Double)]) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, value) in samples { text += "\(name)\(labels) \(MetricsFile.number(value))\n" }
        }
    }

    /// The exposition text; `previousSuccess` is kept when this run failed.
    public func render(_ snapshot: Snapshot, previousSuccess: Double?) -> String {
        var out = Exposition()
        runMetrics(snapshot, previousSuccess: previousSuccess, into: &out)
        queueMetrics(snapshot, into: &out)
        endpointMetrics(snapshot, into: &out)
        return out.text
    }

    /// The last run: when, how long, whether it succeeded, what it did; failed writes of this file.
    private func runMetrics(_ snapshot: Snapshot, previousSuccess: Double?, into out: inout Exposition) {
        let finished = Double(snapshot.runFinished.microseconds) / 1e6
        out.metric(
            "keysat_webhooks_last_run_timestamp_seconds", "gauge", "When the last keysat-deliver run ended.",
            [("", finished)])
        let success = snapshot.summary != nil ? finished : previousSuccess
        if let success {
            out.metric(
                "keysat_webhooks_last_success_timestamp_seconds", "gauge",
                "When the last keysat-deliver run that finished without an error of its own ended.",
                [("", success)])
        }
        out.metric(
            "keysat_webhooks_last_run_duration_seconds", "gauge", "How long the last run took.",
            [("", Double(snapshot.runFinished.microseconds - snapshot.runStarted.microseconds) / 1e6)])
        out.metric(
            "keysat_webhooks_last_run_success", "gauge",
            "1 if the last run finished without an error of its own.",
            [("", snapshot.summary == nil ? 0 : 1)])
        out.metric(
            "keysat_webhooks_metrics_write_failures_total", "counter",
            "Runs that could not write this file (see their warning on standard error).",
            [("", Double(snapshot.failures.count))])
        if let last = snapshot.failures.last {
            out.metric(
                "keysat_webhooks_metrics_last_write_failure_timestamp_seconds", "gauge",
                "When the last run that could not write this file ended.",
                [("", Double(last.microseconds) / 1e6)])
        }
        if let summary = snapshot.summary {
            out.metric(
                "keysat_webhooks_last_run_deliveries", "gauge",
                "Deliveries attempted in the last run, by outcome.",
                [
                    ("{outcome=\"delivered\"}", Double(summary.delivered)),
                    ("{outcome=\"retry_scheduled\"}", Double(summary.retryScheduled)),
                    ("{outcome=\"dead_lettered\"}", Double(summary.deadLettered)),
                    ("{outcome=\"skipped\"}", Double(summary.skipped)),
                ])
            out.metric(
                "keysat_webhooks_last_run_endpoints_disabled", "gauge",
                "Endpoints the last run disabled (failing too long, or 410 Gone).",
                [("", Double(summary.endpointsDisabled))])
        }
    }

    /// The queue: deliveries by state, and the oldest due one's age.
    private func queueMetrics(_ snapshot: Snapshot, into out: inout Exposition) {
        if let queue = snapshot.queue {
            out.metric(
                "keysat_webhooks_queue_deliveries", "gauge", "Deliveries in the queue, by state.",
                [
                    ("{state=\"pending\"}", Double(queue.pending)), ("{state=\"due\"}", Double(queue.due)),
                    ("{state=\"dead\"}", Double(queue.dead)),
                ])
            out.metric(
                "keysat_webhooks_oldest_due_age_seconds", "gauge",
                "How long the oldest due delivery has been waiting (0 when none is due).",
                [("", queue.oldestDueAgeSeconds)])
        }
    }

    /// Per endpoint, the first `maximumEndpoints` (label sets stay bounded).
    private func endpointMetrics(_ snapshot: Snapshot, into out: inout Exposition) {
        if !snapshot.endpoints.isEmpty {
            let listed = snapshot.endpoints.prefix(MetricsFile.maximumEndpoints)
            out.metric(
                "keysat_webhooks_endpoint_deliveries", "gauge", "Deliveries per endpoint, by state.",
                listed.flatMap { stats in
                    [
                        ("{endpoint=\"\(stats.endpoint.id)\",state=\"pending\"}", Double(stats.pending)),
                        ("{endpoint=\"\(stats.endpoint.id)\",state=\"dead\"}", Double(stats.dead)),
                    ]
                })
            out.metric(
                "keysat_webhooks_endpoint_active", "gauge", "1 if the endpoint is enabled.",
                listed.map { ("{endpoint=\"\($0.endpoint.id)\"}", $0.endpoint.active ? 1 : 0) })
            out.metric(
                "keysat_webhooks_endpoint_failure_streak", "gauge",
                "Failed attempts since the endpoint's last success.",
                listed.map { ("{endpoint=\"\($0.endpoint.id)\"}", Double($0.failureStreak)) })
        }
    }

    /// Writes the file atomically (`OwnedFile.replace`), mode 0644 whatever the umask: the
    /// collector reading it (node_exporter) runs as another user.
    public func write(_ snapshot: Snapshot) throws {
        let text = render(snapshot, previousSuccess: previousSuccess())
        try OwnedFile.replace(path, with: Array(text.utf8), mode: 0o644, what: "metrics file")
    }

    /// The last success time in the existing file, if any (only a regular file is read).
    func previousSuccess() -> Double? {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG,
            let bytes = try? InputFile.read(path, limit: 1 << 20, what: "metrics file")
        else { return nil }
        let prefix = "keysat_webhooks_last_success_timestamp_seconds "
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix(prefix)
        {
            return Double(line.dropFirst(prefix.count))
        }
        return nil
    }

    static func number(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}
