import KeysatCommandLine
public import KeysatCommandTree
import KeysatCore
import KeysatDelivery
import KeysatReceiver
public import KeysatStore

extension KeysatWebhooks {
    struct Deliveries: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Inspect and re-queue deliveries.",
            subcommands: [List.self, Show.self, Retry.self, Erase.self, Drop.self])

        @OptionGroup(visibility: .hidden) var database: DatabaseOptions
    }
}

extension DeliveryRecord.State: ExpressibleByArgument {}

/// A moment given as RFC 3339 or as an age (`2h`, `7d`).
func parseMoment(_ text: String?, option: String) throws -> Timestamp? {
    guard let text else { return nil }
    guard let moment = DurationText.moment(text, now: SystemClock().now()) else {
        throw ValidationError("'\(option)' must be an RFC 3339 time or an age such as 2h or 7d")
    }
    return moment
}

extension KeysatWebhooks.Deliveries {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List deliveries, newest first.",
            usage: "keysat-webhooks deliveries list [--status <state>] [--endpoint <id>] [options]",
            discussion: """
                --since and --until take an RFC 3339 time or an age (2h, 7d) and apply to the time the \
                delivery was created. --json prints an array of objects keyed by column name, the \
                payload as a JSON value.
                """)

        @Option(help: "pending, due, delivered, dead, finished (delivered or dead) or all.")
        var status: DeliveryRecord.State = .all

        @Option(help: "Only this endpoint's deliveries.")
        var endpoint: String?

        @Option(help: "Only this event type.")
        var event: String?

        @Option(help: ArgumentHelp("Created at or after this time or age.", valueName: "time"))
        var since: String?

        @Option(help: ArgumentHelp("Created before this time or age.", valueName: "time"))
        var until: String?

        @Option(help: "At most this many rows.")
        var limit = 50

        @Flag(help: "Print a JSON array.")
        var json = false

        @Flag(help: "Full ids and times in the table, however wide it gets.")
        var wide = false

        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            if limit < 1 { throw ValidationError("'--limit' must be a positive number") }
            _ = try parseMoment(since, option: "--since")
            _ = try parseMoment(until, option: "--until")
        }

        func run() throws {
            let store = try database.open(readOnly: true)
            var filter = DeliveryFilter()
            filter.state = status
            // An unknown endpoint is an error, not an empty table.
            filter.endpointID = try endpoint.map { try store.fullID(of: .endpoint, $0) }
            filter.eventType = event
            filter.since = try parseMoment(since, option: "--since")
            filter.until = try parseMoment(until, option: "--until")
            // The table shows no payload: read them only for --json.
            let records = try store.deliveries(filter, limit: limit, payloads: json)
            if json {
                try Output.standard(JSONText.array(records.map { $0.json() }) + "\n")
                return
            }
            var rows = [
                ["ID", "ENDPOINT", "EVENT", "STATUS", "ATTEMPTS", "CODE", "CREATED", "NEXT/DELIVERED"]
            ]
            let now = SystemClock().now()
            for record in records {
                rows.append([
                    Display.id(record.id, wide: wide), Display.id(record.endpointID, wide: wide),
                    record.eventType,
                    record.status.rawValue, String(record.attemptCount),
                    record.lastStatusCode.map(String.init) ?? "-",
                    Display.moment(record.createdAt, now: now, wide: wide),
                    Display.moment(record.deliveredAt ?? record.nextAttemptAt, now: now, wide: wide),
                ])
            }
            try Output.standard(Display.fit(Table.render(rows), wide: wide))
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one delivery, its payload and its attempt history.")

        @Argument(help: "The delivery id.")
        var id: String

        @Flag(help: "Print a JSON object, with the payload and an array of attempts.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let store = try database.open(readOnly: true)
            let id = try store.fullID(of: .delivery, id)
            let record = try store.delivery(id: id)
            let attempts = try store.attempts(deliveryID: id)
            if json {
                var object = record.json()
                object.removeLast()
                object += ",\"attempts\":" + JSONText.array(attempts.map(\.json)) + "}"
                try Output.standard(object + "\n")
                return
            }
            var text = Table.render([
                ["id:", record.id], ["endpoint:", record.endpointID], ["event:", record.eventType],
                ["status:", record.status.rawValue], ["attempts:", String(record.attemptCount)],
                ["last status:", record.lastStatusCode.map(String.init) ?? "-"],
                ["last error:", record.lastError ?? "-"], ["next attempt:", record.nextAttemptAt ?? "-"],
                ["delivered:", record.deliveredAt ?? "-"], ["created:", record.createdAt],
                [
                    "ordering key:",
                    record.orderingKey.map { key in "\(key) (number \(record.sequence.map(String.init) ?? "?"))" } ?? "-",
                ],
            ])
            let payloadIsJSON = (try? JSONValidator.validate(record.payload)) != nil
            if let erasedAt = PayloadErasure.erasedAt(record.payload) {
                text +=
                    "\npayload: erased at \(TerminalText.escape(erasedAt)) (the row and its attempts are kept)\n"
            } else {
                // The payload came from the service, or another program: escaped for the terminal.
                text +=
                    "\npayload:\n"
                    + TerminalText.escape(
                        payloadIsJSON
                            ? JSONPretty.format(record.payload)
                            : String(decoding: record.payload, as: UTF8.self),
                        keepLayout: true)
                    + "\n"
            }
            if attempts.isEmpty {
                text += "\nno attempts recorded\n"
            } else {
                var rows = [["#", "STARTED", "MS", "STATUS", "ERROR"]]
                for attempt in attempts {
                    rows.append([
                        String(attempt.attemptNumber), attempt.startedAt, String(attempt.durationMS),
                        attempt.statusCode.map(String.init) ?? "-", attempt.error ?? "-",
                    ])
                }
                text += "\nattempts:\n" + Table.render(rows)
            }
            try Output.standard(text)
        }
    }

    struct Retry: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-queue deliveries: attempts back to 0, due now.",
            usage:
                "keysat-webhooks deliveries retry (<id> ... | --status <state> [--endpoint <id>]) [options]",
            discussion: """
                Give delivery ids, or select a range: --status dead (or --dead), delivered or all, \
                narrowed by --endpoint, --event, --since and --until (RFC 3339 times or ages, on the \
                time the delivery was created). Re-sending deliveries that already arrived needs \
                --force; --dry-run lists what would be re-queued. Prints how many were re-queued. \
                This is the recovery path after a receiver outage.
                """)

        @Argument(help: "Delivery ids (or select a range with --status).")
        var ids: [String] = []

        @Option(
            help: ArgumentHelp(
                "Re-queue the deliveries in this state: dead, delivered or all (both).", valueName: "state"))
        var status: ReplayState?

        @Flag(help: "The same as --status dead.")
        var dead = false

        @Option(help: "With --status: only this endpoint's deliveries.")
        var endpoint: String?

        @Option(help: "With --status: only this event type.")
        var event: String?

        @Option(help: ArgumentHelp("With --status: created at or after this time or age.", valueName: "time"))
        var since: String?

        @Option(help: ArgumentHelp("With --status: created before this time or age.", valueName: "time"))
        var until: String?

        @Flag(help: "Also re-send deliveries that already arrived (the receiver sees them again).")
        var force = false

        @Flag(help: "Print what would be re-queued, and the count; change nothing.")
        var dryRun = false

        @Flag(help: "Print {\"requeued\", \"dry_run\", \"ids\"} as a JSON object (ids with --dry-run).")
        var json = false

        @OptionGroup var database: DatabaseOptions

        /// What a range is selected by.
        enum ReplayState: String, ExpressibleByArgument, CaseIterable {
            case dead, delivered, all

            var state: DeliveryRecord.State {
                switch self {
                case .dead: .dead
                case .delivered: .delivered
                case .all: .finished
                }
            }
        }

        var selection: ReplayState? { status ?? (dead ? .dead : nil) }

        func validate() throws {
            if dead, let status, status != .dead {
                throw ValidationError(
                    "'--dead' and '--status \(status.rawValue)' contradict each other: give one")
            }
            if (selection != nil) == !ids.isEmpty {
                throw ValidationError("give delivery ids or --status, not both and not neither")
            }
            if selection == nil && (endpoint != nil || event != nil || since != nil || until != nil || dryRun)
            {
                throw ValidationError(
                    "'--endpoint', '--event', '--since', '--until' and '--dry-run' go with --status")
            }
            if let selection, selection != .dead, !force, !dryRun {
                throw ValidationError(
                    "'--status \(selection.rawValue)' re-sends deliveries that arrived: add --force (or look first with --dry-run)"
                )
            }
            _ = try parseMoment(since, option: "--since")
            _ = try parseMoment(until, option: "--until")
        }

        func run() throws {
            // Here, not in validate(): a bad event type is bad data (65), as in every other command.
            if let event { try EventType.validate(event) }
            let store = try database.open(readOnly: dryRun)
            var count: Int
            var listed: [String] = []
            if let selection {
                var filter = DeliveryFilter()
                filter.state = selection.state
                let endpoint = try endpoint.map { try store.fullID(of: .endpoint, $0) }
                filter.endpointID = endpoint
                filter.eventType = event
                filter.since = try parseMoment(since, option: "--since")
                filter.until = try parseMoment(until, option: "--until")
                if dryRun {
                    listed = try store.replayable(filter)
                    count = listed.count
                } else {
                    count = try store.replay(filter)
                }
                // Erased ones cannot be sent again (PayloadErasure): said, not silently dropped.
                let erased = try store.erasedCount(filter)
                if erased > 0 {
                    let one = erased == 1
                    let verb = dryRun ? "would be" : one ? "was" : "were"
                    Output.error(
                        "keysat-webhooks: warning: \(erased) deliver\(one ? "y" : "ies") of this range \(verb) left out: \(one ? "its payload was" : "their payloads were") erased\n"
                    )
                }
                if let endpoint, try !store.endpoint(id: endpoint).active {
                    Output.error(
                        "keysat-webhooks: warning: endpoint \(TerminalText.escape(endpoint)) is disabled: enable it, or the next run dead-letters these again\n"
                    )
                }
            } else {
                let ids = try ids.map { try store.fullID(of: .delivery, $0) }
                count = try store.retry(ids: ids, force: force)
                for endpoint in try store.inactiveEndpoints(forDeliveries: ids).sorted() {
                    Output.error(
                        "keysat-webhooks: warning: endpoint \(TerminalText.escape(endpoint)) is disabled or deleted: the next run dead-letters its deliveries again\n"
                    )
                }
            }
            if json {
                var members = [("requeued", String(count)), ("dry_run", dryRun ? "true" : "false")]
                if dryRun { members.append(("ids", JSONText.array(listed.map { JSONText.string($0) }))) }
                try Output.standard(JSONText.object(members) + "\n")
                return
            }
            if dryRun {
                try Output.standard(listed.map { TerminalText.escape($0) + "\n" }.joined())
                try Output.standard("would re-queue \(count) deliver\(count == 1 ? "y" : "ies")\n")
                return
            }
            try Output.standard("re-queued \(count) deliver\(count == 1 ? "y" : "ies")\n")
        }
    }
}

extension KeysatWebhooks.Deliveries {
    struct Erase: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Erase the payloads of the deliveries whose event data has a value.",
            usage:
                "keysat-webhooks deliveries erase --where data.<field>=<value> [--dry-run] [--json] [options]",
            discussion: """
                For an erasure request: every delivery, whatever its state, whose event data has this \
                value at this field (dotted for nested objects; a string field matches its text exactly, \
                a number or a boolean its JSON text) gets an erasure marker, \
                {"erased":true,"erased_at":"<time>"}, in place of its payload. The row, its status and \
                its attempt history stay. Pending ones are dead-lettered with last error "erased" and \
                never sent; an erased delivery cannot be retried. Works in short transactions (at most \
                100 rows or 50 ms each). On SQLite the old bytes are zeroed and the WAL checkpointed; on \
                PostgreSQL old row versions remain until VACUUM (see keysat-webhooks(1)). Prints the count.
                """)

        @Option(
            name: .customLong("where"),
            help: ArgumentHelp("The field of the event's data and its value.", valueName: "data.field=value"))
        var condition: String

        @Flag(help: "Print how many would be erased; change nothing.")
        var dryRun = false

        @Flag(help: "Print {\"erased\", \"pending\", \"dry_run\"} as a JSON object.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let match = try PayloadErasure.Match(parsing: condition)
            let store = try database.open(readOnly: dryRun)
            let (erased, pending) = try store.erase(match, dryRun: dryRun)
            if json {
                try Output.standard(
                    JSONText.object([
                        ("erased", String(erased)), ("pending", String(pending)),
                        ("dry_run", dryRun ? "true" : "false"),
                    ]) + "\n")
                return
            }
            let deliveries = "\(erased) deliver\(erased == 1 ? "y" : "ies")"
            let dead = pending == 0 ? "" : " (\(pending) pending, \(dryRun ? "to be " : "")dead-lettered)"
            try Output.standard("\(dryRun ? "would erase" : "erased") the payloads of \(deliveries)\(dead)\n")
        }
    }
}
