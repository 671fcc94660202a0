// keysat-enqueue: writes one delivery per subscribed endpoint for one event.
//
// The command line is parsed by hand rather than with swift-argument-parser: this program
// runs once per event and its start-up time is budgeted (see docs/BENCHMARKS.md). It is one
// of the three names of the one installed program (issue 24): Sources/keysat-webhooks/main.swift
// calls `main()` first thing when the program is run as keysat-enqueue.

import KeysatBackends
import KeysatCore
import KeysatStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// keysat-enqueue's command line: its help, its options, and the run of one request.
public enum EnqueueCommand {
    static let name = "keysat-enqueue"

    static let usage = """
        USAGE: keysat-enqueue [OPTIONS] EVENT_TYPE [DATA | -]

        Queues one webhook event: one pending delivery per active endpoint subscribed to
        EVENT_TYPE, written in one transaction. DATA is a JSON value, read from standard input
        when absent or '-'. Prints the new delivery ids, one per line.

        OPTIONS:
          --data-file <path>       Read DATA from this file.
          --idempotency-key <key>  Write nothing if the key was used before for the same event
                                   type and data; print its ids again. Used for another event or
                                   other data, it is refused (65).
          --json                   Print {"event_type": ..., "deliveries": [{"id", "endpoint_id"}]}.
          --kick[=file|spawn]      After the commit, signal keysat-deliver: write the kick file (a
                                   systemd path unit starts a run), and with =spawn start a run now
                                   unless one is going on. Also KEYSAT_KICK=1 or KEYSAT_KICK=spawn.
                                   On PostgreSQL every enqueue notifies lingering runs (NOTIFY) and
                                   no kick file is written; =spawn still starts a run on this host.
          --kick-file <path>       The kick file (default: the database path plus .kick). SQLite
                                   only.
          --max-payload-bytes <n>  Refuse DATA larger than this many bytes (default 1048576).
          --ordering-key <key>     Order the deliveries within this key (e.g. a license id): per
                                   endpoint, one at a time, oldest first, numbered 1, 2, 3 … in
                                   X-Keysat-Sequence. Wins over a key an endpoint derives from
                                   the data (its order-by setting).
          --strict                 Refuse (65) an event type that is not Keysat's, not declared with
                                   'keysat-webhooks event-types add' and subscribed to by no endpoint
                                   by name or pattern; without it, such an event is queued with a
                                   warning.
          --db <path>              Database file, or postgresql:// URI with no password in it (default
                                   $KEYSAT_DB, else /var/lib/keysat/keysat.db).
          --busy-timeout <ms>      Wait this many milliseconds for a locked database (default 5000).
          --version                Show the version.
          -h, --help               Show help information.

        EXIT STATUS: 0 queued (also when no endpoint subscribes), 64 usage, 65 bad data or a
        damaged schema, 66 no database or data file, 71 out of descriptors or memory, 74 I/O error,
        75 database busy or written by a newer keysat-webhooks: try again; 69 PostgreSQL server
        unreachable or libpq5 missing.
        See keysat-enqueue(1).

        """

    static func fail(_ error: KeysatError) -> Never {
        Output.fail(name, error)
    }

    static let parser = OptionParser([
        .init("--data-file", value: true, completion: .file), .init("--idempotency-key", value: true),
        .init("--ordering-key", value: true),
        .init("--max-payload-bytes", value: true), .init("--db", value: true, completion: .file),
        .init("--busy-timeout", value: true),
        .init("--json"), .init("--version"), .init("-h", "--help"),
        .init("--kick", optionalValue: true, completion: .words(["file", "spawn"])),
        .init("--kick-file", value: true, completion: .file), .init("--strict"),
        // `make install` and the package write the completion file with this.
        .init("--generate-completion-script", value: true, completion: .words(["bash"]), hidden: true),
    ])

    static func parse(_ arguments: [String]) throws -> EnqueueRequest {
        let parsed = try parser.parse(arguments)
        let flags = parsed.flags
        let positionals = parsed.positionals
        let options = parsed.values.mapValues { $0.last! }
        try answerAndExitIfAsked(parsed)
        for database in parsed.all("--db") { try Backends.checkCommandLine(database: database) }
        guard let eventType = positionals.first else { throw KeysatError(.usage, "missing EVENT_TYPE") }
        guard positionals.count <= 2 else {
            throw KeysatError(
                .usage, "too many arguments (quote DATA as one argument, or pass it on standard input)")
        }
        let data: EnqueueRequest.DataSource
        if let file = options["--data-file"] {
            guard positionals.count == 1 else {
                throw KeysatError(.usage, "give DATA or --data-file, not both")
            }
            data = .file(file)
        } else if positionals.count == 2, positionals[1] != "-" {
            data = .argument(positionals[1])
        } else {
            data = .standardInput
        }
        var request = EnqueueRequest(
            databasePath: Environment.process.databasePath(option: options["--db"]), eventType: eventType,
            data: data)
        request.json = flags.contains("--json")
        request.strict = flags.contains("--strict")
        request.kickPath = parsed.value("--kick-file")
        if let mode = try kickMode(parsed) { request.kick = mode }
        request.idempotencyKey = options["--idempotency-key"]
        request.orderingKey = options["--ordering-key"]
        if let limit = try parsed.integer(
            "--max-payload-bytes", in: 1...Int.max, what: "a positive number of bytes")
        {
            request.maxPayloadBytes = limit
        }
        if let timeout = try parsed.integer(
            "--busy-timeout", in: 0...Int(Int32.max), what: "a number of milliseconds")
        {
            request.busyTimeoutMS = timeout
        }
        return request
    }

    /// `--generate-completion-script`, `--help` and `--version`: answered, then the program exits.
    static func answerAndExitIfAsked(_ parsed: OptionParser.Parsed) throws {
        if let shell = parsed.value("--generate-completion-script") {
            guard shell == "bash" else {
                throw KeysatError(.usage, "completion scripts are made for bash only")
            }
            try Output.standard(
                parser.bashCompletion(
                    program: name,
                    positionals: EventType.catalogue))
            exit(0)
        }
        if parsed.has("--help") {
            try Output.standard(usage)
            exit(0)
        }
        if parsed.has("--version") {
            try Output.standard(KeysatVersion.string + "\n")
            exit(0)
        }
    }

    /// How to kick after the commit: `--kick[=MODE]`, else KEYSAT_KICK, else not at all.
    static func kickMode(_ parsed: OptionParser.Parsed) throws -> Kick.Mode? {
        var kick = parsed.value("--kick")
        if kick == nil, let variable = Environment.process["KEYSAT_KICK"], !variable.isEmpty, variable != "0"
        {
            kick = variable == "1" ? "" : variable
        }
        guard let kick else { return nil }
        guard let mode = kick.isEmpty ? .file : Kick.Mode(rawValue: kick) else {
            throw KeysatError(.usage, "'--kick' (or KEYSAT_KICK) must be file or spawn, not '\(kick)'")
        }
        return mode
    }

    /// Runs keysat-enqueue with this process's arguments; exits with its status.
    public static func main() -> Never {
        do {
            let request = try parse(Array(CommandLine.arguments.dropFirst()))
            var generator = SystemRandomNumberGenerator()
            let output = try request.run(using: &generator)
            try Output.standard(output)
            exit(0)
        } catch {
            fail(KeysatError.from(error))
        }
    }
}
