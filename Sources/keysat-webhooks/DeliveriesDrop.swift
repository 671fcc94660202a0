import KeysatCommandTree
import KeysatCore

extension KeysatWebhooks.Deliveries {
    /// `deliveries drop`: deletes dead deliveries (issue 23), the way on for a key an endpoint
    /// holds on a dead one (`--order-on-dead hold`) without sending that one again.
    struct Drop: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete dead deliveries and their attempts.",
            usage: "keysat-webhooks deliveries drop <id> ... [options]",
            discussion: """
                Only dead deliveries can be dropped; any other id is refused (65) and nothing is \
                deleted. Dropping the dead delivery that holds an ordering key of an endpoint with \
                --order-on-dead hold lets the key go on with its next delivery (its number shows the \
                gap); 'deliveries retry' sends the dead one again instead.
                """)

        @Argument(help: "Delivery ids (or unique prefixes).")
        var ids: [String] = []

        @Flag(help: "Print {\"dropped\": N} as a JSON object.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            guard !ids.isEmpty else { throw KeysatError(.usage, "give the ids of the dead deliveries to drop") }
            let store = try database.open()
            let ids = try ids.map { try store.fullID(of: .delivery, $0) }
            let count = try store.dropDead(ids: ids)
            if json {
                try Output.standard(JSONText.object([("dropped", String(count))]) + "\n")
            } else {
                try Output.standard("dropped \(count) deliver\(count == 1 ? "y" : "ies")\n")
            }
        }
    }
}
