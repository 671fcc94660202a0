import KeysatCommandLine
public import KeysatCommandTree
import KeysatCore
import KeysatDelivery
import KeysatReceiver
public import KeysatStore

extension WebhookStore.PurgeScope: ExpressibleByArgument {}

extension KeysatWebhooks {
    struct Purge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete finished deliveries older than an age, or erase their payloads.",
            usage:
                "keysat-webhooks purge --older-than|--payloads-older-than <age> [--status <scope>] [options]",
            discussion: """
                Pending deliveries are never deleted or erased. Delivered ones age from their delivery \
                time, dead ones from their creation. --older-than deletes rows and their attempt \
                history, in batches of 1000 rows, so keysat-enqueue is never blocked for long. \
                --payloads-older-than keeps the rows, statuses and attempt history (stats and audits \
                still work) and replaces the payloads of finished deliveries with an erasure marker, \
                {"erased":true,"erased_at":"<time>"}, in short transactions (see deliveries erase). \
                Both may be given. Prints the counts.
                """)

        @Option(help: ArgumentHelp("Delete what finished longer ago than this (e.g. 30d).", valueName: "age"))
        var olderThan: String?

        @Option(
            help: ArgumentHelp(
                "Erase the payloads of what finished longer ago than this (e.g. 7d); keep the rows.",
                valueName: "age"))
        var payloadsOlderThan: String?

        @Option(help: "delivered, dead or all-finished (with --older-than).")
        var status: WebhookStore.PurgeScope = .allFinished

        @Flag(help: "Print what would be deleted or erased; change nothing.")
        var dryRun = false

        @Flag(
            help: "Print {\"deliveries\", \"attempts\", \"payloads_erased\", \"dry_run\"} as a JSON object.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            if olderThan == nil && payloadsOlderThan == nil {
                throw ValidationError("give '--older-than' or '--payloads-older-than' (or both)")
            }
            if let olderThan {
                _ = try DurationText.option(
                    olderThan, named: "--older-than", minimum: 1, zero: "every finished delivery",
                    whole: true)
            }
            if let payloadsOlderThan {
                _ = try DurationText.option(
                    payloadsOlderThan, named: "--payloads-older-than", minimum: 1,
                    zero: "every finished delivery", whole: true)
            }
        }

        func run() throws {
            let now = SystemClock().now()
            let store = try database.open(readOnly: dryRun)
            var deliveries = 0
            var attempts = 0
            if let olderThan {
                let age = Int64(
                    try DurationText.option(
                        olderThan, named: "--older-than", minimum: 1, zero: "", whole: true))
                (deliveries, attempts) = try store.purge(
                    scope: status, before: now.adding(seconds: -age), dryRun: dryRun)
            }
            var erased: Int?
            if let payloadsOlderThan {
                let age = Int64(
                    try DurationText.option(
                        payloadsOlderThan, named: "--payloads-older-than", minimum: 1, zero: "", whole: true))
                erased = try store.erasePayloads(before: now.adding(seconds: -age), dryRun: dryRun)
            }
            if json {
                try Output.standard(
                    JSONText.object([
                        ("deliveries", String(deliveries)), ("attempts", String(attempts)),
                        ("payloads_erased", String(erased ?? 0)), ("dry_run", dryRun ? "true" : "false"),
                    ]) + "\n")
                return
            }
            var text = ""
            if olderThan != nil {
                text +=
                    "\(dryRun ? "would delete" : "deleted") \(deliveries) deliver\(deliveries == 1 ? "y" : "ies") and \(attempts) attempt\(attempts == 1 ? "" : "s")\n"
            }
            if let erased {
                text +=
                    "\(dryRun ? "would erase" : "erased") the payloads of \(erased) deliver\(erased == 1 ? "y" : "ies")\n"
            }
            try Output.standard(text)
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show queue counts and the health of each endpoint.")

        @Flag(help: "Print a JSON object.")
        var json = false

        @Flag(help: "Full ids and times in the table, however wide it gets.")
        var wide = false

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let store = try database.open(readOnly: true)
            let queue = try store.queueCounts()
            let endpoints = try store.endpointStats()
            let keys = try store.keyBacklog()
            if json {
                try Output.standard(statsJSON(queue: queue, endpoints: endpoints, keys: keys) + "\n")
                return
            }
            var text = Table.render([
                ["pending:", String(queue.pending)], ["due now:", String(queue.due)],
                [
                    "oldest due:",
                    queue.due == 0 ? "-" : Display.age(Int64(queue.oldestDueAgeSeconds)) + " ago",
                ],
                ["delivered:", String(queue.delivered)], ["dead:", String(queue.dead)],
            ])
            var rows = [
                [
                    "ENDPOINT", "ACTIVE", "PENDING", "DEAD", "OK/24H", "RATE/24H", "LAST SUCCESS",
                    "LAST FAILURE", "STREAK", "URL",
                ]
            ]
            let now = SystemClock().now()
            for stats in endpoints {
                rows.append([
                    Display.id(stats.endpoint.id, wide: wide), stats.endpoint.active ? "yes" : "no",
                    String(stats.pending),
                    String(stats.dead),
                    String(stats.delivered24h),
                    stats.successRate24h.map { "\(Int(($0 * 100).rounded()))%" } ?? "-",
                    Display.moment(stats.lastSuccess, now: now, wide: wide),
                    Display.moment(stats.lastFailure, now: now, wide: wide), String(stats.failureStreak),
                    stats.endpoint.url,
                ])
            }
            text = Display.fit(text + "\n" + Table.render(rows), wide: wide)
            text += Display.fit(heldKeysNote(endpoints.map(\.endpoint.id), keys, now: now, wide: wide), wide: wide)
            // A failing endpoint whose retries end long before auto-disable is losing deliveries
            // to the dead letters while it still looks enabled: said, only then.
            for stats in endpoints
            where stats.endpoint.active && stats.failureStreak > 0 && givesUpLongBeforeDisable(stats.endpoint.settings) {
                let schedule = stats.endpoint.settings.retrySchedule
                let note = """
                    note: endpoint \(TerminalText.escape(Display.id(stats.endpoint.id, wide: wide))) is failing; its retries (\(schedule.preset ?? "its own")) end after \(RetrySchedule.span(schedule.spanSeconds)),
                      long before auto-disable (\(RetrySchedule.span(DeliveryOptions().disableAfterSeconds))): later failures are dead-lettered ('deliveries retry' resends)

                    """
                text += Display.fit(note, wide: wide)
            }
            try Output.standard(text)
        }

        /// `stats --json`: the queue's counts and each endpoint's.
        private func statsJSON(
            queue: WebhookStore.QueueCounts, endpoints: [WebhookStore.EndpointStats], keys: [String: KeyBacklog]
        ) -> String {
            let list = endpoints.map { stats in
                JSONText.object([
                    ("id", JSONText.string(stats.endpoint.id)),
                    ("url", JSONText.string(stats.endpoint.url)),
                    ("active", stats.endpoint.active ? "true" : "false"),
                    ("pending", String(stats.pending)), ("dead", String(stats.dead)),
                    ("delivered_24h", String(stats.delivered24h)),
                    ("success_rate_24h", stats.successRate24h.map { String($0) } ?? "null"),
                    ("last_success", JSONText.string(stats.lastSuccess)),
                    ("last_failure", JSONText.string(stats.lastFailure)),
                    ("failure_streak", String(stats.failureStreak)),
                    ("retry_schedule", JSONText.string(stats.endpoint.settings.retrySchedule.description)),
                    ("retries_span_seconds", String(stats.endpoint.settings.retrySchedule.spanSeconds)),
                    ("retries_end_long_before_disable", givesUpLongBeforeDisable(stats.endpoint.settings) ? "true" : "false"),
                    ("disabled_reason", JSONText.string(stats.endpoint.disabledReason)),
                    ("keys_held", String(keys[stats.endpoint.id]?.heldKeys ?? 0)),
                    ("oldest_waiting", JSONText.string(keys[stats.endpoint.id]?.oldestWaiting)),
                ])
            }
            return JSONText.object([
                ("pending", String(queue.pending)), ("due", String(queue.due)),
                ("delivered", String(queue.delivered)), ("dead", String(queue.dead)),
                ("oldest_due_age_seconds", String(Int(queue.oldestDueAgeSeconds))),
                ("endpoints", JSONText.array(list)),
            ])
        }
    }
}

/// The lines of `stats` about endpoints with held ordering keys (issue 23): how many keys wait
/// behind a failing (or, with `--order-on-dead hold`, dead) delivery, and since when.
func heldKeysNote(_ endpoints: [String], _ keys: [String: KeyBacklog], now: Timestamp, wide: Bool) -> String {
    endpoints.compactMap { id -> String? in
        guard let backlog = keys[id], backlog.heldKeys > 0 else { return nil }
        let one = backlog.heldKeys == 1
        return "note: endpoint \(TerminalText.escape(Display.id(id, wide: wide))): \(backlog.heldKeys) ordering key\(one ? "" : "s") held back behind a failing or dead delivery, the oldest waiting since \(Display.moment(backlog.oldestWaiting, now: now, wide: wide))\n"
    }.joined()
}
