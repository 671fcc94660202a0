import KeysatCommandLine
import KeysatCommandTree
import KeysatCore
import KeysatStore

extension KeysatWebhooks {
    struct Trigger: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Enqueue a signed sample event of a Keysat event type, marked as a test, and start a run.",
            usage:
                "keysat-webhooks trigger (<type> [--endpoint <id>] [--data <json>] | --list) [--json] [options]",
            discussion: """
                The sample (see --list, and keysat-webhooks(1)) goes to every active endpoint \
                subscribed to the type, by name, "*" or a pattern such as license.*, as \
                keysat-enqueue's events do, or with --endpoint to that endpoint alone. Its envelope \
                carries "test": true, so that a receiver can ignore it in production; otherwise it is \
                an event as any: signed, retried and listed as the others. Then a run is started as \
                keysat-enqueue's spawn kick starts one (unless one is going on), so that the sample \
                arrives now; --no-kick leaves it to the next run. Prints the delivery ids.
                """)

        @Argument(help: "The event type (one of Keysat's; see --list).")
        var type: String?

        @Option(help: "Send to this endpoint alone, whatever it subscribes to.")
        var endpoint: String?

        @Option(
            help: ArgumentHelp("The event's data instead of the sample, one JSON value.", valueName: "json"))
        var data: String?

        @Flag(help: "Print the event types and their sample data.")
        var list = false

        @Flag(help: "Do not start a run: the next run sends the sample.")
        var noKick = false

        @Flag(help: "Print a JSON object (with --list, an array).")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            if list && (type != nil || endpoint != nil || data != nil || noKick) {
                throw ValidationError("'--list' takes no event type, '--endpoint', '--data' or '--no-kick'")
            }
            if !list && type == nil {
                throw ValidationError("give an event type (see 'keysat-webhooks trigger --list')")
            }
        }

        func run() throws {
            if list { return try printList() }
            guard let type else { return }
            try EventType.validate(type)
            let sample: String
            if let data {
                sample = data
            } else {
                guard let known = EventSample.data(of: type) else { throw EventSample.noSample(type) }
                sample = known
            }
            let bytes = Array(sample.utf8)
            do {
                try JSONValidator.validate(bytes)
            } catch {
                throw KeysatError(.data, "'--data' is not valid JSON: \(error)")
            }
            let store = try database.open()
            let endpointID = try endpoint.map { try store.fullID(of: .endpoint, $0) }
            var generator = SystemRandomNumberGenerator()
            let result = try store.enqueueSample(
                eventType: type, data: bytes, endpointID: endpointID, using: &generator)
            if !noKick && !result.deliveries.isEmpty { kick(store) }
            if json {
                try Output.standard(
                    JSONText.object([
                        ("event_type", JSONText.string(type)), ("test", "true"),
                        (
                            "deliveries",
                            JSONText.array(
                                result.deliveries.map {
                                    JSONText.object([
                                        ("id", JSONText.string($0.id)),
                                        ("endpoint_id", JSONText.string($0.endpointID)),
                                    ])
                                })
                        ),
                    ]) + "\n")
                return
            }
            if result.deliveries.isEmpty {
                Output.error(
                    "keysat-webhooks: warning: no active endpoint subscribes to \(TerminalText.escape(type)); nothing was queued (give --endpoint to send it to one)\n"
                )
                return
            }
            try Output.standard(
                result.deliveries.map { TerminalText.escape("\($0.id) \($0.endpointID)") + "\n" }.joined())
        }

        /// Starts a run as `keysat-enqueue --kick=spawn` does: the kick file for a run going on
        /// (SQLite; PostgreSQL's enqueue has notified the runs already), then a run unless one
        /// holds the lock. A failure loses nothing (the next timer run sends the sample).
        private func kick(_ store: any WebhookBackend) {
            let location = database.resolvedPath
            if !store.capabilities.kickFile {
                Kick.spawnDeliver(postgres: location, executable: Kick.deliverExecutable())
                return
            }
            do {
                try Kick.touch(
                    Kick.defaultPath(database: location), sharing: OwnedFile.Sharing(database: location))
            } catch {
                Output.error(
                    "keysat-webhooks: warning: \(KeysatError.from(error).message); the next timer run will send the sample\n"
                )
            }
            Kick.spawnDeliver(
                database: location, lockPath: Kick.defaultLockPath(database: location),
                executable: Kick.deliverExecutable())
        }

        private func printList() throws {
            if json {
                try Output.standard(
                    JSONText.array(
                        EventSample.catalogue.map {
                            JSONText.object([
                                ("event_type", JSONText.string($0.eventType)), ("data", $0.data),
                            ])
                        }) + "\n")
                return
            }
            try Output.standard(
                EventSample.catalogue.map { "\($0.eventType)\n    \($0.data)\n" }.joined())
        }
    }
}
