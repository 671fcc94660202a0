import KeysatCommandLine
import KeysatCommandTree
import KeysatCore
import KeysatDelivery
import KeysatReceiver
import KeysatStore

extension KeysatWebhooks {
    struct EventTypes: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "event-types",
            abstract: "List the known event types; declare or forget your own.",
            discussion: """
                Known are Keysat's own event types, those declared here, and those an endpoint subscribes \
                to by name or by a pattern ('license.*' makes license.renewed known; the pattern is not \
                listed). keysat-enqueue warns about any other type (a typo goes to every '*' \
                endpoint), and with --strict refuses it.
                """,
            subcommands: [List.self, Add.self, Remove.self], defaultSubcommand: List.self)

        @OptionGroup(visibility: .hidden) var database: DatabaseOptions
    }
}

extension KeysatWebhooks.EventTypes {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the known event types and where each is known from.")

        @Flag(help: "Print a JSON array of {\"name\", \"source\"}.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let known = try database.open(readOnly: true).knownEventTypes()
            if json {
                try Output.standard(
                    JSONText.array(
                        known.map {
                            JSONText.object([
                                ("name", JSONText.string($0.name)),
                                ("source", JSONText.string($0.source.rawValue)),
                            ])
                        }) + "\n")
                return
            }
            try Output.standard(
                Table.render([["EVENT TYPE", "SOURCE"]] + known.map { [$0.name, $0.source.rawValue] }))
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Declare an event type of your own.")

        @Argument(help: "The event type.")
        var name: String

        @Flag(help: "Print {\"name\", \"declared\"} as a JSON object (declared: false when it was known).")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let declared = try database.open().declareEventType(name)
            if json {
                try Output.standard(
                    JSONText.object([
                        ("name", JSONText.string(name)), ("declared", declared ? "true" : "false"),
                    ]) + "\n")
            } else if !declared {
                Output.error("keysat-webhooks: note: '\(name)' was already known\n")
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Forget a declared event type.")

        @Argument(help: "The event type.")
        var name: String

        @Flag(help: "Print {\"name\", \"removed\"} as a JSON object.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            guard try database.open().forgetEventType(name) else {
                throw KeysatError(
                    .data, "'\(name)' is not a declared event type (see 'keysat-webhooks event-types')")
            }
            if json {
                try Output.standard(
                    JSONText.object([("name", JSONText.string(name)), ("removed", "true")]) + "\n")
            }
        }
    }
}
