import KeysatCommandLine
import KeysatCommandTree
import KeysatCore
import KeysatDelivery
import KeysatReceiver
import KeysatStore

extension KeysatWebhooks {
    struct Listen: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Receive webhooks locally and print one line per delivery.",
            usage:
                "keysat-webhooks listen [--port <port>] [--secret-file|--public-key-file <path>] [options]",
            discussion: """
                A receiver for trying keysat-deliver out, or for developing against: with --forward-to, \
                each request is passed on, body and headers unchanged, to the application at that URL, \
                and its status is the answer. With a secret (from --secret-file or $KEYSAT_WEBHOOK_SECRET, \
                never from the command line) each signature is verified (by default only the Standard \
                Webhooks headers, which sign a timestamp; see --scheme) and shown as valid or INVALID; \
                with --public-key-file, the v1a (Ed25519) signatures are checked with that public key; \
                an INVALID request is answered 401 and not forwarded, unless --forward-invalid. A request \
                whose head could be read two ways (control bytes in a header line, a space before a \
                colon, a folded line, more than one Content-Length, any Transfer-Encoding) is answered \
                400 and never forwarded. Without --forward-to, answers every POST with --respond's \
                status. Prints 'listening on URL' on standard error once ready.
                """)

        @Option(help: "The address to listen on.")
        var host = "127.0.0.1"

        @Option(help: "The port to listen on (0 picks a free one).")
        var port = 8088

        @Option(
            help: ArgumentHelp(
                "Read the endpoint secret from PATH ('-' for standard input).", valueName: "path"),
            completion: .file())
        var secretFile: String?

        @Option(
            help: ArgumentHelp(
                "Verify v1a signatures with the Ed25519 public key (whpk_…) in PATH instead of a secret.",
                valueName: "path"),
            completion: .file())
        var publicKeyFile: String?

        @Option(help: ArgumentHelp("Answer every delivery with this HTTP status.", valueName: "status"))
        var respond = 204

        @Option(help: ArgumentHelp("Exit after N deliveries.", valueName: "n"))
        var count: Int?

        @Option(
            help: ArgumentHelp(
                "Pass each request on to this URL and answer with its status.", valueName: "url"))
        var forwardTo: String?

        @Option(
            parsing: .unconditional,
            help: ArgumentHelp(
                "With --forward-to: time limit of one forward, in seconds (at least 0.001).",
                valueName: "seconds"))
        var forwardTimeout = "10"

        @Flag(help: "With --forward-to: pass on requests whose signature is INVALID too (else answer 401).")
        var forwardInvalid = false

        @Option(
            help: ArgumentHelp(
                "Which signatures to accept; keysat and either take X-Keysat-Signature: no replay protection.",
                valueName: "scheme"))
        var scheme: ReceivedWebhook.Accepted = .standard

        @Flag(help: "Print each request's headers after its line.")
        var printHeaders = false

        @Flag(help: "Print one JSON object per delivery, with its headers and body.")
        var json = false

        func validate() throws {
            try refuseDatabaseOptions("listen")
            try refuseContradictions(publicKeyFile: publicKeyFile, secretFile: secretFile, scheme: scheme)
            if !(200...599).contains(respond) {
                throw ValidationError("'--respond' must be an HTTP status from 200 to 599")
            }
            if !(0...65535).contains(port) { throw ValidationError("'--port' must be from 0 to 65535") }
            if let count, count < 1 { throw ValidationError("'--count' must be a positive number") }
            if let forwardTo {
                do { try EndpointURL.validate(forwardTo) } catch {
                    throw ValidationError("'--forward-to': \(error)")
                }
                if CommandLine.arguments.contains(where: { $0 == "--respond" || $0.hasPrefix("--respond=") })
                {
                    throw ValidationError(
                        "'--respond' and '--forward-to' contradict each other: the application answers")
                }
            }
            // libcurl reads a 0 ms limit as none: anything that would round to it is refused.
            _ = try DurationText.option(
                forwardTimeout, named: "--forward-timeout", minimum: Forwarder.minimumTimeoutSeconds)
            if forwardInvalid && forwardTo == nil {
                throw ValidationError("'--forward-invalid' needs '--forward-to'")
            }
        }

        /// Forwards at once: a slow application must not make the senders of the others time out.
        static let forwardingThreads = 8

        func run() throws {
            try Signature.load()
            let publicKey = try publicKeyFile.map { try receiverPublicKey(file: $0) }
            let key = publicKey == nil ? try receiverKey() : nil
            let timeout = try DurationText.option(
                forwardTimeout, named: "--forward-timeout", minimum: Forwarder.minimumTimeoutSeconds)
            let forwarders = try forwardTo.map { url in
                try (0..<Self.forwardingThreads).map { _ in try Forwarder(url: url, timeoutSeconds: timeout) }
            }
            let listener = try Listener(
                host: host, port: port, respondStatus: respond, forwarders: forwarders ?? [])
            let shownHost = host.contains(":") ? "[\(host)]" : host
            Output.error("keysat-webhooks: listening on http://\(shownHost):\(listener.port)/\n")
            var answered = 0
            let finish = {
                (delivery: Listener.Request, verdict: Verdict, forwarded: Forwarder.Result?, status: Int?) in
                answered += 1
                try Output.standard(
                    Self.describe(
                        delivery, verdict: verdict, json: json, forwarded: forwarded,
                        headers: printHeaders || json)
                        + "\n")
                return Listener.Answer(status: status, goOn: count.map { answered < $0 } ?? true)
            }
            try listener.serve { delivery in
                let verdict = Verdict(delivery, key: key, publicKey: publicKey, accepting: scheme)
                guard forwardTo != nil else { return .answer(try finish(delivery, verdict, nil, nil)) }
                if verdict == .invalid && !forwardInvalid {
                    return .answer(try finish(delivery, verdict, nil, 401))
                }
                // The application's answer; 502 when it could not be reached.
                return .forward { result in try finish(delivery, verdict, result, result.status ?? 502) }
            }
        }

        /// The key from --secret-file or $KEYSAT_WEBHOOK_SECRET (none: signatures unchecked).
        private func receiverKey() throws -> [UInt8]? {
            if let secretFile {
                guard let bytes = try InputFile.read(secretFile, limit: 4096, what: "secret file") else {
                    throw KeysatError(.data, "secret file \(secretFile) is larger than 4096 bytes")
                }
                return try WebhookSecret.receiverKey(
                    bytes, source: secretFile == "-" ? "standard input" : secretFile)
            }
            guard let value = Environment.process["KEYSAT_WEBHOOK_SECRET"], !value.isEmpty else { return nil }
            return try WebhookSecret.receiverKey(Array(value.utf8), source: "$KEYSAT_WEBHOOK_SECRET")
        }

        static func describe(
            _ delivery: Listener.Request, verdict: Verdict, json: Bool, forwarded: Forwarder.Result? = nil,
            headers: Bool = false
        ) -> String {
            let signature = verdict.word
            let id = delivery.header("X-Keysat-Delivery") ?? "-"
            let event = delivery.header("X-Keysat-Event") ?? "-"
            guard json else {
                // The sender's header values, for a terminal: escaped.
                var line =
                    "\(TerminalText.escape(id)) \(TerminalText.escape(event)) signature=\(signature) \(delivery.body.count) bytes"
                if let forwarded {
                    line +=
                        forwarded.status.map { " forwarded=\($0) \(forwarded.milliseconds)ms" }
                        ?? " forwarded=failed (\(TerminalText.escape(forwarded.error ?? "no answer")))"
                }
                if headers {
                    for (name, value) in delivery.headers {
                        line += "\n  \(TerminalText.escape(name)): \(TerminalText.escape(value))"
                    }
                }
                return line
            }
            let isJSON = (try? JSONValidator.validate(delivery.body)) != nil
            let body =
                isJSON
                ? String(
                    decoding: JSONText.escapingControls(Array(Envelope.trimmed(delivery.body))), as: UTF8.self
                )
                : JSONText.string(String(decoding: delivery.body, as: UTF8.self))
            var members = [
                ("delivery_id", JSONText.string(id)), ("event_type", JSONText.string(event)),
                (
                    "signature",
                    JSONText.string(
                        verdict == .invalid ? "invalid" : verdict.scheme == nil ? "unchecked" : "valid")
                ),
                ("scheme", JSONText.string(verdict.scheme?.rawValue)),
                ("replay_protection", verdict.scheme.map { $0.replayProtected ? "true" : "false" } ?? "null"),
                ("size", String(delivery.body.count)),
                ("path", JSONText.string(delivery.path)),
                (
                    "headers",
                    JSONText.array(
                        delivery.headers.map {
                            JSONText.array([JSONText.string($0.0), JSONText.string($0.1)])
                        })
                ),
                ("body", body),
            ]
            if let forwarded {
                members += [
                    ("forwarded_status", JSONText.number(forwarded.status)),
                    ("forward_error", JSONText.string(forwarded.error)),
                    ("forward_ms", String(forwarded.milliseconds)),
                ]
            }
            return JSONText.object(members)
        }
    }
}
