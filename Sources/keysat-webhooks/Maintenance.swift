public import ArgumentParser
import KeysatCommandLine
import KeysatCore
import KeysatDelivery
import KeysatReceiver
public import KeysatStore

extension WebhookStore.PurgeScope: ExpressibleByArgument {}

extension KeysatWebhooks {
    struct Purge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete finished deliveries older than an age, with their attempt history.",
            usage: "keysat-webhooks purge --older-than <age> [--status <scope>] [--dry-run] [options]",
            discussion: """
                Pending deliveries are never deleted. Delivered ones age from their delivery time, \
                dead ones from their creation. Deletes in batches of 1000 rows, so keysat-enqueue is \
                never blocked for long. Prints the counts.
                """)

        @Option(help: ArgumentHelp("Delete what finished longer ago than this (e.g. 30d).", valueName: "age"))
        var olderThan: String

        @Option(help: "delivered, dead or all-finished.")
        var status: WebhookStore.PurgeScope = .allFinished

        @Flag(help: "Print what would be deleted; delete nothing.")
        var dryRun = false

        @Flag(help: "Print {\"deliveries\", \"attempts\", \"dry_run\"} as a JSON object.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            _ = try DurationText.option(olderThan, named: "--older-than", minimum: 1, zero: "every finished delivery", whole: true)
        }

        func run() throws {
            let age = Int64(try DurationText.option(olderThan, named: "--older-than", minimum: 1, zero: "", whole: true))
            let cutoff = SystemClock().now().adding(seconds: -age)
            let (deliveries, attempts) = try database.open(readOnly: dryRun).purge(
                scope: status, before: cutoff, dryRun: dryRun)
            if json {
                try Output.standard(
                    JSONText.object([
                        ("deliveries", String(deliveries)), ("attempts", String(attempts)),
                        ("dry_run", dryRun ? "true" : "false"),
                    ]) + "\n")
                return
            }
            try Output.standard(
                "\(dryRun ? "would delete" : "deleted") \(deliveries) deliver\(deliveries == 1 ? "y" : "ies") and \(attempts) attempt\(attempts == 1 ? "" : "s")\n"
            )
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
            if json {
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
                    ])
                }
                try Output.standard(
                    JSONText.object([
                        ("pending", String(queue.pending)), ("due", String(queue.due)),
                        ("delivered", String(queue.delivered)), ("dead", String(queue.dead)),
                        ("oldest_due_age_seconds", String(Int(queue.oldestDueAgeSeconds))),
                        ("endpoints", JSONText.array(list)),
                    ]) + "\n")
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
    }
}
