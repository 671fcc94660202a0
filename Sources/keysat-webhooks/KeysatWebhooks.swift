import ArgumentParser
import KeysatBackends
import KeysatCommandLine
import KeysatCore
import KeysatDelivery
import KeysatReceiver
import KeysatStore

/// The operator's command: database set-up, endpoints, deliveries.
struct KeysatWebhooks: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keysat-webhooks",
        abstract: "Set up and operate keysat-webhooks: database, endpoints, deliveries.",
        discussion: """
            The database is --db PATH, else $KEYSAT_DB, else /var/lib/keysat/keysat.db; a \
            postgresql:// URI names a PostgreSQL database shared by several hosts (no password on \
            the command line: use PGPASSFILE). See keysat-webhooks(1).
            """,
        version: KeysatVersion.string,
        subcommands: [
            Init.self, EndpointCommand.self, Deliveries.self, Purge.self, Stats.self, Listen.self,
            Verify.self, Units.self, EventTypes.self, Copy.self, Trigger.self,
        ]
    )

    // Accepted before the subcommand words too; the subcommands read the same values.
    @OptionGroup(visibility: .hidden) var database: DatabaseOptions

    /// Runs the command and maps every error to one line and a sysexits code, here only.
    static func main() {
        let name = configuration.commandName!
        do {
            // Endpoint secrets pass through most subcommands (add, show, rotate, listen, verify).
            try SecretHolding.begin()
            var command = try parseAsRoot()
            try command.run()
        } catch let error as KeysatError {
            Output.fail(name, error)
        } catch {
            let code = exitCode(for: error)
            if code == .success || error is ExitCode {
                exit(withError: error)
            }
            let (path, command, next) = Self.subcommand(of: Array(CommandLine.arguments.dropFirst()))
            var message = self.message(for: error).split(separator: "\n").joined(separator: " ")
            // An unknown subcommand: argument-parser says "unexpected argument"; say what it is.
            let names = command.configuration.subcommands.map { $0._commandName }
            if let next, !names.isEmpty, message.lowercased().contains("unexpected argument") {
                message = "'\(next)' is not a subcommand of '\(([name] + path).joined(separator: " "))'"
                if let close = OptionParser.closest(to: next, among: names) {
                    message += " (did you mean '\(close)'?)"
                }
            }
            let help = ([name] + path + ["--help"]).joined(separator: " ")
            Output.error("\(name): error: \(message) (see '\(help)')\n")
            exit(withError: ExitCode(64))
        }
    }
}

extension KeysatWebhooks {
    /// The subcommand the words name (its path of names and its type), and the first word after
    /// it that is not an option: where a usage error points the user to.
    static func subcommand(of words: [String]) -> ([String], any ParsableCommand.Type, String?) {
        var path: [String] = []
        var command: any ParsableCommand.Type = KeysatWebhooks.self
        var index = 0
        while index < words.count {
            let word = words[index]
            index += 1
            if word == "--db" || word == "--busy-timeout" {
                index += 1
                continue
            }
            if word.hasPrefix("-") { continue }
            guard
                let sub = command.configuration.subcommands.first(where: { $0._commandName == word })
            else { return (path, command, word) }
            path.append(word)
            command = sub
        }
        return (path, command, nil)
    }
}

/// For the commands that use no database (listen, verify): `--db` and `--busy-timeout`, which
/// the top-level command would otherwise take silently, are refused (64).
func refuseDatabaseOptions(_ command: String) throws {
    for word in CommandLine.arguments.dropFirst() {
        for option in ["--db", "--busy-timeout"] where word == option || word.hasPrefix(option + "=") {
            throw ValidationError("'\(option)' does not apply to \(command), which uses no database")
        }
    }
}

/// Options every subcommand accepts, before or after its own words.
struct DatabaseOptions: ParsableArguments {
    @Option(
        name: .customLong("db"),
        help: ArgumentHelp(
            "The database file or postgresql:// URI (default $KEYSAT_DB, else /var/lib/keysat/keysat.db).",
            valueName: "path"),
        completion: .file())
    var path: String?

    @Option(
        name: .customLong("busy-timeout"),
        help: ArgumentHelp("Wait up to this many milliseconds for a locked database.", valueName: "ms"))
    var busyTimeoutMS: Int = 5000

    func validate() throws {
        if busyTimeoutMS < 0 { throw ValidationError("'--busy-timeout' must be a number of milliseconds") }
        do {
            try Backends.checkCommandLine(database: path)
        } catch let error as KeysatError {
            throw ValidationError(error.message)
        }
    }

    var resolvedPath: String { Environment.process.databasePath(option: path) }

    /// Opens the store; `create` makes a missing database instead of refusing it.
    /// `readOnly` for the commands that only read, so that a monitoring user with read access can.
    func open(create: Bool = false, readOnly: Bool = false) throws -> any WebhookBackend {
        let store = try Backends.open(
            resolvedPath, create: create, readOnly: readOnly, busyTimeoutMS: busyTimeoutMS)
        if let warning = store.permissionWarning() { Output.error("keysat-webhooks: warning: \(warning)\n") }
        if let newer = store.newerSchema {
            Output.error(
                "keysat-webhooks: warning: database \(store.location) was written by a newer keysat-webhooks (schema \(newer), this one knows \(WebhookStore.knownSchemaVersion)): reading it, which is safe; upgrade keysat-webhooks to change it\n"
            )
        }
        return store
    }
}
