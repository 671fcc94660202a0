import ArgumentParser
import KeysatStore

extension KeysatWebhooks {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the database, or bring an existing one (also Keysat's own) up to date.",
            discussion:
                "Prints the database path. Safe to run again: it changes nothing when the schema is current.")

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let store = try database.open(create: true)
            try Output.standard(store.database.path + "\n")
        }
    }
}
