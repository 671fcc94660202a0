import KeysatBackends
import KeysatCommandLine
import KeysatCommandTree
import KeysatCore
import KeysatDelivery
import KeysatReceiver
import KeysatStore

extension KeysatWebhooks {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the database, or bring an existing one (also Keysat's own) up to date.",
            discussion: """
                Prints the database path. Safe to run again: it changes nothing when the schema is current. \
                With --group, the database, its folder and its companion files are given to that group \
                (files 0660, folder 2770, setgid so new files keep the group): members of the group, such \
                as the licensing service's user, can enqueue; other users get nothing. The folder's mode \
                is changed only when it holds nothing but the database and its companion files and is \
                neither sticky nor a system folder (/, /var/lib, /srv, ...); otherwise init refuses (73) \
                and changes nothing. A folder already 2770 and the group's is used as it is.

                On PostgreSQL (--db postgresql://...) init creates or upgrades this project's tables in one \
                transaction, once even when several hosts run it at once, and prints the URI without its \
                password; --group and --repair do not apply there (64).
                """)

        @Option(
            help: ArgumentHelp(
                "Share the database with the members of this group (SQLite only).", valueName: "name"))
        var group: String?

        @Flag(
            help: ArgumentHelp(
                "Record schema steps whose changes are there but whose rows are missing, then update (SQLite only).",
                discussion:
                    "Also remakes a missing index. A missing table, column or trigger is not remade: what it held cannot be known."
            ))
        var repair = false

        @Flag(help: "Print {\"database\", \"schema_version\", \"adopted_keysat_database\"} as a JSON object.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            // Refused before anything is opened or created.
            if group != nil { try Backends.refuse(.group, at: database.resolvedPath) }
            if repair { try Backends.refuse(.repair, at: database.resolvedPath) }
            // Before the database exists: a folder that may not be given to the group is refused
            // with nothing created or changed.
            if let group {
                try DatabaseFolder(database: database.resolvedPath).checkMayShare(
                    gid: SharedDatabase.groupID(group))
            }
            let store =
                repair
                ? try Backends.open(
                    database.resolvedPath, busyTimeoutMS: database.busyTimeoutMS, repairSchema: true)
                : try database.open(create: true)
            // The one command that reads the whole schema: what a start finding the schema
            // current does not look at (a table or column dropped by hand) is said here.
            if let problem = try store.schemaProblem() { throw KeysatError(.data, problem) }
            if !store.repairedSchemaSteps.isEmpty {
                let steps = store.repairedSchemaSteps.map(String.init).joined(separator: ", ")
                Output.error("keysat-webhooks: note: recorded schema steps \(steps) as applied\n")
            }
            if let group { try SharedDatabase.share(store.location, group: group) }
            if store.adoptedKeysatTables {
                Output.error(
                    "keysat-webhooks: note: this is Keysat's own database: stop Keysat's built-in webhook delivery worker, or both will send every delivery (see keysat-webhooks(1), RUNNING BESIDE KEYSAT)\n"
                )
            }
            if json {
                try Output.standard(
                    JSONText.object([
                        ("database", JSONText.string(store.location)),
                        ("schema_version", String(try store.schemaVersion())),
                        ("adopted_keysat_database", store.adoptedKeysatTables ? "true" : "false"),
                    ]) + "\n")
                return
            }
            try Output.standard(store.location + "\n")
        }
    }
}
