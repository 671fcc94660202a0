import KeysatBackends
import KeysatCommandLine
import KeysatCommandTree
import KeysatCore
import KeysatStore

extension KeysatWebhooks {
    struct Copy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy the whole queue into another database, SQLite or PostgreSQL.",
            usage: "keysat-webhooks copy --to <location> [--into-nonempty] [--verbose] [--json] [options]",
            discussion: """
                Copies --db (the source) into --to: endpoints with their secrets, pending, dead and \
                delivered deliveries with every column and in the order they were written, the attempt \
                history, idempotency keys, declared event types, endpoint health and per-minute summaries. \
                Either may be a file or a postgresql:// URI: SQLite to PostgreSQL to move over, PostgreSQL \
                to SQLite for a way back. The target is created or brought up to date first, as init does; \
                then everything is written in one transaction, the counts of every table read back and \
                compared before it commits, so a failure leaves the target's rows as they were. Stop \
                keysat-deliver's timers on every host first: a delivery a run is sending from PostgreSQL \
                (a live lease) is refused (75); claims are not copied. A row the target cannot hold as it \
                is (a time that is not one, NULL ids, blobs, text that is not UTF-8) is refused naming its \
                rowid and column (65). A target with endpoints or deliveries is refused (73) unless \
                --into-nonempty; keys that collide are refused even then. Silent on success.
                """)

        @Option(
            name: .customLong("to"),
            help: ArgumentHelp(
                "The database to copy into: a file or a postgresql:// URI (password in a passfile, not here).",
                valueName: "location"),
            completion: .file())
        var target: String

        @Flag(help: "Copy into a database that has endpoints or deliveries already.")
        var intoNonempty = false

        @Flag(help: "Print the rows copied per table.")
        var verbose = false

        @Flag(help: "Print {\"source\", \"target\", \"tables\"} as a JSON object.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            do {
                try QueueCopy.refusePassword(in: target, option: "--to")
                if let source = database.path { try QueueCopy.refusePassword(in: source, option: "--db") }
            } catch let error as KeysatError {
                throw ValidationError(error.message)
            }
        }

        func run() throws {
            var copy = QueueCopy(source: database.resolvedPath, target: target)
            copy.intoNonempty = intoNonempty
            copy.busyTimeoutMS = database.busyTimeoutMS
            let report = try copy.run()
            let tables = QueueTable.allCases.map { ($0.name, report.copied[$0, default: 0]) }
            if json {
                try Output.standard(
                    JSONText.object([
                        ("source", JSONText.string(report.source)),
                        ("target", JSONText.string(report.target)),
                        ("tables", JSONText.object(tables.map { ($0.0, String($0.1)) })),
                    ]) + "\n")
            } else if verbose {
                var text = Table.render(tables.map { ["\($0.0):", String($0.1)] })
                text += "copied \(report.source) into \(report.target)\n"
                try Output.standard(text)
            }
        }
    }
}
