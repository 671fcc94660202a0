import KeysatCommandLine
import KeysatCommandTree
import KeysatCore
import KeysatDelivery
import KeysatReceiver
import KeysatStore

extension KeysatWebhooks.EndpointCommand {
    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send one signed test delivery to an endpoint now, and say how it went.",
            usage: "keysat-webhooks endpoint test <id> [--event <type>] [--data <json>] [options]",
            discussion: """
                The delivery goes through the same engine, network policy and signing as a run, to this \
                endpoint alone, and is recorded as a delivery of its own (deliveries list shows it; if it \
                failed, runs retry it like any other). Prints the status, the time and the start of the \
                response. Exits 0 when the receiver answered 2xx, 1 otherwise.
                """)

        @Argument(help: "The endpoint id (or a unique prefix).")
        var id: String

        @Option(help: "The event type of the test delivery.")
        var event = "webhook.test"

        @Option(help: ArgumentHelp("The event's data, one JSON value.", valueName: "json"))
        var data = #"{"test":true}"#

        @Option(help: ArgumentHelp("Time limit of the attempt, in seconds.", valueName: "seconds"))
        var timeout = "10"

        @Option(
            help: ArgumentHelp(
                "Allow this network although the policy refuses it (repeatable).", valueName: "cidr"))
        var allowNetwork: [String] = []

        @Flag(help: "Allow loopback, RFC 1918, unique local and CGNAT addresses.")
        var allowPrivateNetworks = false

        @Flag(help: "Print the outcome as a JSON object.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            _ = try DurationText.option(timeout, named: "--timeout")
        }

        func run() throws {
            try EventType.validate(event)
            let bytes = Array(data.utf8)
            do {
                try JSONValidator.validate(bytes)
            } catch {
                throw KeysatError(.data, "'--data' is not valid JSON: \(error)")
            }
            var options = DeliveryOptions()
            options.policy = try NetworkPolicy.make(
                allow: allowNetwork, allowPrivate: allowPrivateNetworks, environment: .process)
            options.timeoutSeconds = try DurationText.option(timeout, named: "--timeout")
            options.connectTimeoutSeconds = min(options.connectTimeoutSeconds, options.timeoutSeconds)
            options.breaker = 1
            let store = try database.open()
            let endpoint = try store.fullID(of: .endpoint, id)
            if try store.endpoint(id: endpoint).settings.customHeadersUnreadable {
                // A run would not send to it either (not without the operator's headers).
                throw KeysatError(
                    .data,
                    "endpoint \(endpoint): its custom_headers cannot be read (another program wrote them): set them again with 'keysat-webhooks endpoint update \(endpoint) --header …'")
            }
            var generator = SystemRandomNumberGenerator()
            // Due after the test's own limits and a minute: a run then sends it only if this
            // command was interrupted.
            let deliveryID = try store.writeTestDelivery(
                endpointID: endpoint, eventType: event, data: bytes,
                sendingSeconds: options.timeoutSeconds + options.connectTimeoutSeconds + 60, using: &generator)
            guard let due = try store.dueDelivery(id: deliveryID) else {
                throw KeysatError(.internal, "the test delivery \(deliveryID) vanished before it was sent")
            }
            let clock = SystemClock()
            let logger = Logger(program: "keysat-webhooks", threshold: .warn)
            let run = DeliveryRun(
                store: SingleDelivery(due, in: store), options: options, clock: clock, logger: logger)
            _ = try run.run(at: clock.now())
            let record = try store.delivery(id: deliveryID)
            let attempt = try store.attempts(deliveryID: deliveryID).last
            let delivered = record.deliveredAt != nil
            let response = attempt?.responseBody ?? ""
            if json {
                try Output.standard(
                    JSONText.object([
                        ("delivery_id", JSONText.string(deliveryID)),
                        ("endpoint_id", JSONText.string(endpoint)),
                        ("delivered", delivered ? "true" : "false"),
                        ("status_code", JSONText.number(attempt?.statusCode)),
                        ("duration_ms", JSONText.number(attempt?.durationMS)),
                        ("error", JSONText.string(delivered ? nil : attempt?.error)),
                        ("response_body", JSONText.string(response)),
                        ("next_attempt_at", JSONText.string(record.nextAttemptAt)),
                    ]) + "\n")
            } else {
                let status = attempt?.statusCode.map { "HTTP \($0)" } ?? "no answer"
                var text =
                    "\(delivered ? "delivered" : "failed"): \(status) in \(attempt?.durationMS ?? 0) ms"
                text += " (delivery \(deliveryID))\n"
                if !delivered, let error = attempt?.error { text += "error: \(TerminalText.escape(error))\n" }
                if !response.isEmpty {
                    text += "response: \(TerminalText.escape(String(response.prefix(200))))\n"
                }
                if !delivered, let next = record.nextAttemptAt {
                    text += "next attempt: \(next) (as any delivery)\n"
                }
                try Output.standard(text)
            }
            if !delivered { throw ExitCode(1) }
        }
    }
}
