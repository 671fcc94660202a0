import ArgumentParser
import KeysatCommandLine
import KeysatCore
import KeysatDelivery
import KeysatReceiver
import KeysatStore

extension KeysatWebhooks {
    struct Listen: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Receive webhooks locally and print one line per delivery.",
            usage:
                "keysat-webhooks listen [--port <port>] [--secret-file <path>] [--forward-to <url>] [options]",
            discussion: """
                A receiver for trying keysat-deliver out, or for developing against: with --forward-to, \
                each request is passed on, body and headers unchanged, to the application at that URL, \
                and its status is the answer. With a secret (from --secret-file or $KEYSAT_WEBHOOK_SECRET, \
                never from the command line) each signature is verified (Standard Webhooks headers, else \
                X-Keysat-Signature) and shown as valid or INVALID. Without --forward-to, answers every POST \
                with --respond's status. Prints 'listening on URL' on standard error once ready.
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

        @Option(help: ArgumentHelp("Answer every delivery with this HTTP status.", valueName: "status"))
        var respond = 204

        @Option(help: ArgumentHelp("Exit after N deliveries.", valueName: "n"))
        var count: Int?

        @Option(
            help: ArgumentHelp(
                "Pass each request on to this URL and answer with its status.", valueName: "url"))
        var forwardTo: String?

        @Option(
            help: ArgumentHelp(
                "With --forward-to: time limit of one forward, in seconds.", valueName: "seconds"))
        var forwardTimeout = "10"

        @Flag(help: "Print each request's headers after its line.")
        var printHeaders = false

        @Flag(help: "Print one JSON object per delivery, with its headers and body.")
        var json = false

        func validate() throws {
            try refuseDatabaseOptions("listen")
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
            guard let seconds = DurationText.fractionalSeconds(forwardTimeout), seconds > 0 else {
                throw ValidationError("'--forward-timeout' must be a positive number of seconds")
            }
            _ = seconds
        }

        func run() throws {
            let secret: String?
            if let secretFile {
                secret = try endpointSecret(file: secretFile)
            } else if let value = Environment.process["KEYSAT_WEBHOOK_SECRET"], !value.isEmpty {
                secret = try EndpointSecret.parse(Array(value.utf8), source: "$KEYSAT_WEBHOOK_SECRET")
            } else {
                secret = nil
            }
            try Signature.load()
            let listener = try Listener(host: host, port: port, respondStatus: respond)
            let shownHost = host.contains(":") ? "[\(host)]" : host
            Output.error("keysat-webhooks: listening on http://\(shownHost):\(listener.port)/\n")
            let forwarder = try forwardTo.map {
                try Forwarder(url: $0, timeoutSeconds: DurationText.fractionalSeconds(forwardTimeout) ?? 10)
            }
            var received = 0
            try listener.serve { delivery in
                received += 1
                let forwarded = try forwarder?.forward(headers: delivery.headers, body: delivery.body)
                try Output.standard(
                    Self.describe(
                        delivery, secret: secret, json: json, forwarded: forwarded,
                        headers: printHeaders || json)
                        + "\n")
                // The application's answer; 502 when it could not be reached.
                let status = forwarded.map { $0.status ?? 502 }
                return Listener.Answer(status: status, goOn: count.map { received < $0 } ?? true)
            }
        }

        static func describe(
            _ delivery: Listener.Request, secret: String?, json: Bool, forwarded: Forwarder.Result? = nil,
            headers: Bool = false
        ) -> String {
            let signature: String
            if let secret {
                // Standard Webhooks headers when present (timestamp included), else X-Keysat-Signature:
                // the same check as `keysat-webhooks verify`.
                let received = ReceivedWebhook(
                    headers: delivery.headers.map { (name: $0.0, value: $0.1) }, body: delivery.body)
                let valid =
                    (try? received.verify(secret: secret, now: SystemClock().now(), toleranceSeconds: 300))
                    != nil
                signature = valid ? "valid" : "INVALID"
            } else {
                signature = "unchecked"
            }
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
                ("signature", JSONText.string(signature.lowercased())), ("size", String(delivery.body.count)),
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
