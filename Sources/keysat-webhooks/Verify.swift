#if canImport(Glibc)
    import Glibc
#endif
import KeysatCommandLine
public import KeysatCommandTree
import KeysatCore
import KeysatDelivery
public import KeysatReceiver
import KeysatStore

extension KeysatWebhooks {
    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a received webhook's signature, for receivers written in shell.",
            usage:
                "keysat-webhooks verify [--secret-file|--public-key-file <path>] [--header <h> ...] [<file>]",
            discussion: """
                Reads the body from FILE or standard input, and the headers from --header options. \
                By default only the Standard Webhooks headers (webhook-signature, webhook-id, \
                webhook-timestamp) are accepted, timestamp included, so a captured request cannot \
                be replayed later; --scheme keysat or either also accepts X-Keysat-Signature, which \
                signs the body alone and is always reported as having no replay protection. The \
                secret comes from --secret-file or $KEYSAT_WEBHOOK_SECRET, as text or in whsec_ form, \
                never from the command line. With --public-key-file, the v1a (Ed25519) signatures \
                of an endpoint with --signature ed25519 are checked instead, with its public key \
                (whpk_…), which cannot forge one; the timestamp rules are the same. Exit status 0: valid; 1: invalid, with the reason on \
                standard error; 64: usage; 65: a malformed secret. The comparison takes constant time.
                """)

        @Option(help: ArgumentHelp("Read the secret from PATH.", valueName: "path"), completion: .file())
        var secretFile: String?

        @Option(
            help: ArgumentHelp(
                "Verify v1a signatures with the Ed25519 public key (whpk_…) in PATH instead of a secret.",
                valueName: "path"),
            completion: .file())
        var publicKeyFile: String?

        @Option(
            name: .customLong("header"),
            help: ArgumentHelp("A received header, 'Name: value' (repeatable).", valueName: "header"))
        var headers: [String] = []

        @Option(
            parsing: .unconditional,
            help: ArgumentHelp(
                "How far webhook-timestamp may be from now, in seconds or as 5m (at least 1s).",
                valueName: "duration"
            ))
        var tolerance = "300"

        @Option(
            help: ArgumentHelp(
                "Which signatures to accept; keysat and either take X-Keysat-Signature: no replay protection.",
                valueName: "scheme"))
        var scheme: ReceivedWebhook.Accepted = .standard

        @Argument(help: "The body as received (default: standard input).")
        var file: String?

        @Flag(
            help:
                "Print {\"valid\", \"scheme\", \"replay_protection\", \"error\"} as a JSON object (the exit status is the same)."
        )
        var json = false

        func validate() throws {
            try refuseDatabaseOptions("verify")
            try refuseContradictions(publicKeyFile: publicKeyFile, secretFile: secretFile, scheme: scheme)
            _ = try DurationText.option(tolerance, named: "--tolerance", minimum: 1, whole: true)
            for header in headers where !header.contains(":") {
                throw ValidationError("'--header' must be 'Name: value', not \(JSONText.string(header))")
            }
        }

        func run() throws {
            try Signature.load()
            let publicKey = try publicKeyFile.map { try receiverPublicKey(file: $0) }
            let key = publicKey == nil ? try receiverKey() : []
            guard let body = try InputFile.read(file ?? "-", limit: 64 << 20, what: "body") else {
                throw KeysatError(.data, "the body is larger than 64 MiB")
            }
            let parsed = headers.map { header -> (name: String, value: String) in
                let colon = header.firstIndex(of: ":")!
                let value = header[header.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
                return (String(header[..<colon]).trimmingSpaces, String(value).trimmingSpaces)
            }
            let toleranceSeconds = Int64(
                try DurationText.option(tolerance, named: "--tolerance", minimum: 1, whole: true))
            let received = ReceivedWebhook(headers: parsed, body: body)
            do {
                let scheme =
                    if let publicKey {
                        try received.verify(publicKey: publicKey, now: SystemClock().now(), toleranceSeconds: toleranceSeconds)
                    } else {
                        try received.verify(
                            key: key, accepting: self.scheme, now: SystemClock().now(), toleranceSeconds: toleranceSeconds)
                    }
                if json {
                    try Output.standard(
                        JSONText.object([
                            ("valid", "true"), ("scheme", JSONText.string(scheme.rawValue)),
                            ("replay_protection", scheme.replayProtected ? "true" : "false"),
                            ("error", "null"),
                        ]) + "\n")
                } else if !scheme.replayProtected {
                    Output.error(
                        "keysat-webhooks: valid X-Keysat-Signature, which has no replay protection: the same request verifies whenever it is sent again\n"
                    )
                }
            } catch {
                if json {
                    try Output.standard(
                        JSONText.object([
                            ("valid", "false"), ("scheme", "null"), ("replay_protection", "null"),
                            ("error", JSONText.string("\(error)")),
                        ])
                            + "\n")
                } else {
                    Output.error("keysat-webhooks: invalid: \(TerminalText.escape("\(error)"))\n")
                }
                throw ExitCode(1)
            }
        }

        /// The key from --secret-file or $KEYSAT_WEBHOOK_SECRET; a malformed one is an error of
        /// its own (65), never reported as a bad signature.
        private func receiverKey() throws -> [UInt8] {
            if let secretFile {
                guard let bytes = try InputFile.read(secretFile, limit: 4096, what: "secret file") else {
                    throw KeysatError(.usage, "secret file \(secretFile) is larger than 4096 bytes")
                }
                return try WebhookSecret.receiverKey(
                    bytes, source: secretFile == "-" ? "standard input" : secretFile)
            }
            guard let value = Environment.process["KEYSAT_WEBHOOK_SECRET"], !value.isEmpty else {
                throw KeysatError(.usage, "no secret: give --secret-file PATH or set KEYSAT_WEBHOOK_SECRET")
            }
            return try WebhookSecret.receiverKey(Array(value.utf8), source: "$KEYSAT_WEBHOOK_SECRET")
        }
    }
}

extension ReceivedWebhook.Accepted: ExpressibleByArgument {}

/// `--public-key-file` with options it cannot go with, for `verify` and `listen`.
func refuseContradictions(publicKeyFile: String?, secretFile: String?, scheme: ReceivedWebhook.Accepted) throws {
    guard publicKeyFile != nil else { return }
    if secretFile != nil {
        throw ValidationError("'--public-key-file' and '--secret-file' contradict each other: give one")
    }
    if scheme != .standard {
        throw ValidationError(
            "'--scheme \(scheme.rawValue)' accepts X-Keysat-Signature, an HMAC, which a public key cannot verify")
    }
}

/// The Ed25519 public key in a `--public-key-file` (`whpk_…`). A file others can write is
/// refused: whoever replaces it decides which webhooks verify.
func receiverPublicKey(file: String) throws -> Ed25519Key {
    guard let bytes = try InputFile.read(file, limit: 4096, what: "public key file", guarding: .trustedKey) else {
        throw KeysatError(.data, "public key file \(file) is larger than 4096 bytes")
    }
    return try Ed25519Key(publicKey: AsymmetricKey.publicKey(bytes, source: file == "-" ? "standard input" : file))
}
