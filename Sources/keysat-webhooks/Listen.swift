import ArgumentParser
import KeysatDelivery
import KeysatStore

extension KeysatWebhooks {
    struct Listen: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Receive webhooks locally and print one line per delivery.",
            discussion: """
                A receiver for trying keysat-deliver out. With a secret (from --secret-file or
                $KEYSAT_WEBHOOK_SECRET, never from the command line) each X-Keysat-Signature is
                verified (Standard Webhooks headers, else X-Keysat-Signature) and shown as valid or INVALID. Answers every POST with --respond's status.
                Prints 'listening on URL' on standard error once ready.
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

        @Flag(help: "Print one JSON object per delivery, with its body.")
        var json = false

        func validate() throws {
            if !(200...599).contains(respond) {
                throw ValidationError("'--respond' must be an HTTP status from 200 to 599")
            }
            if !(0...65535).contains(port) { throw ValidationError("'--port' must be from 0 to 65535") }
            if let count, count < 1 { throw ValidationError("'--count' must be a positive number") }
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
            var received = 0
            try listener.serve { delivery in
                received += 1
                try Output.standard(Self.describe(delivery, secret: secret, json: json) + "\n")
                return count.map { received < $0 } ?? true
            }
        }

        static func describe(_ delivery: Listener.Delivery, secret: String?, json: Bool) -> String {
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
                return
                    "\(TerminalText.escape(id)) \(TerminalText.escape(event)) signature=\(signature) \(delivery.body.count) bytes"
            }
            let isJSON = (try? JSONValidator.validate(delivery.body)) != nil
            let body =
                isJSON
                ? String(
                    decoding: JSONText.escapingControls(Array(Envelope.trimmed(delivery.body))), as: UTF8.self
                )
                : JSONText.string(String(decoding: delivery.body, as: UTF8.self))
            return JSONText.object([
                ("delivery_id", JSONText.string(id)), ("event_type", JSONText.string(event)),
                ("signature", JSONText.string(signature.lowercased())), ("size", String(delivery.body.count)),
                ("path", JSONText.string(delivery.path)), ("body", body),
            ])
        }
    }
}
