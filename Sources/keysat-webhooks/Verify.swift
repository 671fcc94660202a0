import ArgumentParser
import KeysatCommandLine
import KeysatCore
import KeysatDelivery
import KeysatReceiver
import KeysatStore

extension KeysatWebhooks {
    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a received webhook's signature, for receivers written in shell.",
            usage:
                "keysat-webhooks verify [--secret-file <path>] [--header <name: value> ...] [<file>] [options]",
            discussion: """
                Reads the body from FILE or standard input, and the headers from --header options. \
                With webhook-signature, webhook-id and webhook-timestamp (Standard Webhooks) those are \
                checked, timestamp included; otherwise X-Keysat-Signature. The secret comes from \
                --secret-file or $KEYSAT_WEBHOOK_SECRET, in hex or whsec_ form, never from the command \
                line. Exit status 0: valid; 1: invalid, with the reason on standard error; 64: usage. \
                The comparison takes constant time.
                """)

        @Option(help: ArgumentHelp("Read the secret from PATH.", valueName: "path"), completion: .file())
        var secretFile: String?

        @Option(
            name: .customLong("header"),
            help: ArgumentHelp("A received header, 'Name: value' (repeatable).", valueName: "header"))
        var headers: [String] = []

        @Option(help: ArgumentHelp("How far webhook-timestamp may be from now.", valueName: "seconds"))
        var tolerance = "300"

        @Argument(help: "The body as received (default: standard input).")
        var file: String?

        @Flag(
            help: "Print {\"valid\", \"scheme\", \"error\"} as a JSON object (the exit status is the same).")
        var json = false

        func validate() throws {
            try refuseDatabaseOptions("verify")
            if DurationText.seconds(tolerance) == nil {
                throw ValidationError("'--tolerance' must be a number of seconds")
            }
            for header in headers where !header.contains(":") {
                throw ValidationError("'--header' must be 'Name: value', not \(JSONText.string(header))")
            }
        }

        func run() throws {
            try Signature.load()
            let secret: String
            if let secretFile {
                guard let bytes = try InputFile.read(secretFile, limit: 4096, what: "secret file") else {
                    throw KeysatError(.usage, "secret file \(secretFile) is larger than 4096 bytes")
                }
                secret = String(decoding: Envelope.trimmed(bytes), as: UTF8.self)
            } else if let value = Environment.process["KEYSAT_WEBHOOK_SECRET"], !value.isEmpty {
                secret = value
            } else {
                throw KeysatError(.usage, "no secret: give --secret-file PATH or set KEYSAT_WEBHOOK_SECRET")
            }
            if secret.isEmpty { throw KeysatError(.usage, "the secret is empty") }
            guard let body = try InputFile.read(file ?? "-", limit: 64 << 20, what: "body") else {
                throw KeysatError(.data, "the body is larger than 64 MiB")
            }
            let parsed = headers.map { header -> (name: String, value: String) in
                let colon = header.firstIndex(of: ":")!
                let value = header[header.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
                return (String(header[..<colon]).trimmingSpaces, String(value).trimmingSpaces)
            }
            do {
                let scheme = try ReceivedWebhook(headers: parsed, body: body).verify(
                    secret: secret, now: SystemClock().now(),
                    toleranceSeconds: DurationText.seconds(tolerance) ?? 300)
                if json {
                    try Output.standard(
                        JSONText.object([
                            ("valid", "true"), ("scheme", JSONText.string(scheme.rawValue)),
                            ("error", "null"),
                        ]) + "\n")
                }
            } catch {
                if json {
                    try Output.standard(
                        JSONText.object([
                            ("valid", "false"), ("scheme", "null"), ("error", JSONText.string("\(error)")),
                        ])
                            + "\n")
                } else {
                    Output.error("keysat-webhooks: invalid: \(error)\n")
                }
                throw ExitCode(1)
            }
        }
    }
}
