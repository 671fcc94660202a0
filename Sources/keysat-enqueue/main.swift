// keysat-enqueue: writes one delivery per subscribed endpoint for one event.
//
// The command line is parsed by hand rather than with swift-argument-parser: this program
// runs once per event and its start-up time is budgeted (see docs/BENCHMARKS.md).

import KeysatStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

let name = "keysat-enqueue"

let usage = """
    USAGE: keysat-enqueue [OPTIONS] EVENT_TYPE [DATA | -]

    Queues one webhook event: one pending delivery per active endpoint subscribed to
    EVENT_TYPE, written in one transaction. DATA is a JSON value, read from standard input
    when absent or '-'. Prints the new delivery ids, one per line.

    OPTIONS:
      --data-file PATH          Read DATA from PATH.
      --idempotency-key KEY     Write nothing if KEY was used before; print its ids again.
      --json                    Print {"event_type": ..., "deliveries": [{"id", "endpoint_id"}]}.
      --max-payload-bytes N     Refuse DATA larger than N bytes (default 1048576).
      --db PATH                 Database file (default $KEYSAT_DB, else /var/lib/keysat/keysat.db).
      --busy-timeout MS         Wait up to MS milliseconds for a locked database (default 5000).
      --version                 Print the version.
      -h, --help                Print this help.

    EXIT STATUS: 0 queued (also when no endpoint subscribes), 64 usage, 65 bad data,
    66 no database or data file, 74 I/O error, 75 database busy: try again.
    See keysat-enqueue(1).

    """

func fail(_ error: KeysatError) -> Never {
    Output.fail(name, error, usage: "Usage: keysat-enqueue [OPTIONS] EVENT_TYPE [DATA | -] (see --help)")
}

func parse(_ arguments: [String]) throws -> EnqueueRequest {
    var options: [String: String] = [:]
    var flags: Set<String> = []
    var positionals: [String] = []
    let valued: Set<String> = [
        "--data-file", "--idempotency-key", "--max-payload-bytes", "--db", "--busy-timeout",
    ]
    var index = 0
    var onlyPositionals = false
    while index < arguments.count {
        let argument = arguments[index]
        index += 1
        // A DATA argument may itself start with '-' (a negative number) and '-' means stdin.
        if onlyPositionals || !argument.hasPrefix("-") || argument == "-"
            || argument.dropFirst().first.map({ $0.isNumber }) == true
        {
            positionals.append(argument)
            continue
        }
        if argument == "--" {
            onlyPositionals = true
            continue
        }
        var key = argument
        var value: String?
        if let equals = argument.firstIndex(of: "=") {
            key = String(argument[..<equals])
            value = String(argument[argument.index(after: equals)...])
        }
        switch key {
        case "-h", "--help", "--version", "--json":
            guard value == nil else { throw KeysatError(.usage, "option '\(key)' takes no value") }
            flags.insert(key)
        case _ where valued.contains(key):
            if value == nil {
                guard index < arguments.count else {
                    throw KeysatError(.usage, "option '\(key)' needs a value")
                }
                value = arguments[index]
                index += 1
            }
            options[key] = value
        default:
            throw KeysatError(.usage, "unknown option '\(key)'")
        }
    }
    if flags.contains("-h") || flags.contains("--help") {
        try Output.standard(usage)
        exit(0)
    }
    if flags.contains("--version") {
        try Output.standard(KeysatVersion.string + "\n")
        exit(0)
    }
    guard let eventType = positionals.first else { throw KeysatError(.usage, "missing EVENT_TYPE") }
    guard positionals.count <= 2 else {
        throw KeysatError(
            .usage, "too many arguments (quote DATA as one argument, or pass it on standard input)")
    }
    let data: EnqueueRequest.DataSource
    if let file = options["--data-file"] {
        guard positionals.count == 1 else { throw KeysatError(.usage, "give DATA or --data-file, not both") }
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
    request.idempotencyKey = options["--idempotency-key"]
    if let text = options["--max-payload-bytes"] {
        guard let limit = Int(text), limit > 0 else {
            throw KeysatError(.usage, "'--max-payload-bytes' must be a positive number of bytes")
        }
        request.maxPayloadBytes = limit
    }
    if let text = options["--busy-timeout"] {
        guard let timeout = Int(text), timeout >= 0 else {
            throw KeysatError(.usage, "'--busy-timeout' must be a number of milliseconds")
        }
        request.busyTimeoutMS = timeout
    }
    return request
}

do {
    let request = try parse(Array(CommandLine.arguments.dropFirst()))
    var generator = SystemRandomNumberGenerator()
    let output = try request.run(using: &generator)
    try Output.standard(output)
    exit(0)
} catch {
    fail(KeysatError.from(error))
}
