#if canImport(Glibc)
    import Glibc
#endif
import KeysatCommandLine
import KeysatCommandTree
import KeysatCore
import KeysatDelivery
import KeysatReceiver
import KeysatStore

extension KeysatWebhooks {
    struct EndpointCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "endpoint",
            abstract: "Add, list, show, update, rotate the secret of, enable, disable and remove endpoints.",
            subcommands: [
                Add.self, List.self, Show.self, Update.self, RotateSecret.self, Enable.self, Disable.self,
                Remove.self, Test.self,
            ]
        )

        @OptionGroup(visibility: .hidden) var database: DatabaseOptions
    }
}

/// The secret a command was given through `--secret-file`, or a new random one.
func endpointSecret(file: String?) throws -> String {
    guard let file else {
        var generator = SystemRandomNumberGenerator()
        return Identifiers.secret(using: &generator)
    }
    guard let bytes = try InputFile.read(file, limit: 4096, what: "secret file") else {
        throw KeysatError(.data, "secret file \(file) is larger than 4096 bytes")
    }
    return try WebhookSecret.endpointSecret(bytes, source: file == "-" ? "standard input" : file)
}

/// Warns when the URL's host resolves into an address keysat-deliver refuses by default.
func warnAboutNetworkPolicy(host: String) {
    let refused = NetworkPolicy.resolve(host: host).filter { !NetworkPolicy().allows($0) }
    guard let first = refused.first else { return }
    let address = NetworkPolicy.format(first)
    let subject =
        NetworkPolicy.parseAddress(host) == nil
        ? "\(host) resolves to \(address), which" : "\(address) is an address"
    Output.error(
        "keysat-webhooks: warning: \(subject) keysat-deliver refuses by default; "
            + "allow it with 'keysat-deliver --allow-network \(address)' (or --allow-private-networks)\n")
}

/// An endpoint as one JSON object; the secret only when asked for.
func endpointJSON(_ endpoint: Endpoint, includeSecret: Bool) -> String {
    var members: [(String, String)] = [
        ("id", JSONText.string(endpoint.id)),
        ("url", JSONText.string(endpoint.url)),
        ("event_types", JSONText.array(endpoint.eventTypes.map { JSONText.string($0) })),
        ("active", endpoint.active ? "true" : "false"),
        ("description", JSONText.string(endpoint.description)),
        ("created_at", JSONText.string(endpoint.createdAt)),
        ("updated_at", JSONText.string(endpoint.updatedAt)),
        ("ordered", endpoint.ordered ? "true" : "false"),
        ("retry_schedule", JSONText.string(endpoint.settings.retrySchedule.description)),
        ("retry_delays", JSONText.array(endpoint.settings.retrySchedule.delays.map { String($0) })),
        ("retry_jitter", String(endpoint.settings.retryJitterPercent)),
        // Names only: values may be secrets (an Authorization token).
        ("headers", JSONText.array(endpoint.settings.customHeaders.names.map { JSONText.string($0) })),
        ("client_cert", JSONText.string(endpoint.settings.clientCertificate?.certificate)),
        ("client_key", JSONText.string(endpoint.settings.clientCertificate?.key)),
        ("rate", JSONText.string(endpoint.settings.rateLimit?.description)),
        ("order_by", JSONText.string(endpoint.settings.orderBy?.description)),
        ("order_on_dead", JSONText.string(endpoint.settings.holdOnDead ? "hold" : "move-on")),
    ] + filterJSON(endpoint.settings) + [
        ("disabled_reason", JSONText.string(endpoint.disabledReason)),
        ("disabled_at", JSONText.string(endpoint.disabledAt)),
        ("signature", JSONText.string(endpoint.signingKey == nil ? "hmac" : "ed25519")),
        ("public_key", JSONText.string(endpoint.signingKey.flatMap(AsymmetricKey.publicKeyText(ofSigningKey:)))),
        ("keysat_signature", endpoint.keysatSignature ? "true" : "false"),
    ]
    if includeSecret {
        members.append(("secret", JSONText.string(endpoint.secret)))
        members.append(("secret_whsec", JSONText.string(StandardWebhooks.whsec(endpoint.secret))))
        members.append(("signing_key", JSONText.string(endpoint.signingKey)))
    }
    return JSONText.object(members)
}

/// `--retry-schedule` and `--retry-jitter`, of `endpoint add` and `endpoint update`.
struct RetryOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "When failed deliveries are tried again: keysat (the default: 5s … 2h, 10 attempts), standard (Standard Webhooks: 5s … 24h, about 3 days) or a list such as 5s,1m,10m,1h,6h,1d.",
            valueName: "schedule"))
    var retrySchedule: String?

    @Option(
        help: ArgumentHelp(
            "Spread each retry by up to this percentage of its delay, either way (0 to 100; default 0, exact times).",
            valueName: "percent"))
    var retryJitter: Int?

    /// The change asked for; checked before anything is written.
    func change() throws -> EndpointSettings.Change {
        let schedule = try retrySchedule.map { try RetrySchedule(parsing: $0) }
        if let retryJitter, !(0...EndpointSettings.maximumJitterPercent).contains(retryJitter) {
            throw KeysatError(.usage, "--retry-jitter: \(retryJitter) is not a percentage from 0 to 100")
        }
        return EndpointSettings.Change(retrySchedule: schedule, retryJitterPercent: retryJitter)
    }
}

/// `--rate`, of `endpoint add` and `endpoint update`.
struct RateOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Send at most this many requests a second or a minute, N/s or N/min (a burst of at most N, then N per period), across runs and hosts.",
            valueName: "rate"))
    var rate: String?

    /// The limit given, checked (64 for one that is not), or `nil` when none was.
    func read() throws -> RateLimit? { try rate.map { try RateLimit(parsing: $0) } }
}

/// `--header` and `--header-file`, of `endpoint add` and `endpoint update`.
struct HeaderOptions: ParsableArguments {
    @Option(
        name: .customLong("header"),
        help: ArgumentHelp(
            "A header every request to the endpoint carries, 'Name: value' (repeatable; for a secret such as an Authorization token, --header-file).",
            valueName: "Name: value"))
    var headers: [String] = []

    @Option(
        name: .customLong("header-file"),
        help: ArgumentHelp(
            "A header whose value is the content of a file ('-' for standard input), so that it is never on a command line (repeatable).",
            valueName: "NAME=PATH"),
        completion: .file())
    var headerFiles: [String] = []

    var isEmpty: Bool { headers.isEmpty && headerFiles.isEmpty }

    /// The headers given, checked, values read from their files; before anything is written.
    func read() throws -> [CustomHeaders.Header] {
        var result = try headers.map { try CustomHeaders.parse($0) }
        for item in headerFiles {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                throw KeysatError(.usage, "--header-file \(JSONText.string(item)) is not NAME=PATH")
            }
            let name = String(item[..<equals])
            let path = String(item[item.index(after: equals)...])
            guard let bytes = try InputFile.read(path, limit: CustomHeaders.maximumValueBytes + 2, what: "header file")
            else {
                throw KeysatError(.data, "header file \(path) is larger than \(CustomHeaders.maximumValueBytes) bytes")
            }
            var value = String(decoding: bytes, as: UTF8.self)
            // One line, as files are written: its line end is not part of the value.
            if value.hasSuffix("\n") { value.removeLast() }
            if value.hasSuffix("\r") { value.removeLast() }
            result.append(try CustomHeaders.checked(CustomHeaders.Header(name: name, value: value.trimmingSpaces)))
        }
        var seen = Set<String>()
        for header in result where !seen.insert(header.name.lowercased()).inserted {
            throw KeysatError(.usage, "header \(header.name) is given twice")
        }
        return result
    }
}

/// `--client-cert` and `--client-key`, of `endpoint add` and `endpoint update`.
struct CertificateOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "A PEM certificate the endpoint's TLS handshakes present (mutual TLS), with --client-key.",
            valueName: "path"),
        completion: .file())
    var clientCert: String?

    @Option(
        help: ArgumentHelp(
            "The certificate's PEM private key, unencrypted, in a file other users cannot read.", valueName: "path"),
        completion: .file())
    var clientKey: String?

    /// The pair given, checked (`ClientCertificate.check`), or `nil` when none was.
    func read() throws -> ClientCertificate? {
        switch (clientCert, clientKey) {
        case (nil, nil): return nil
        case (let certificate?, let key?):
            var buffer = [CChar](repeating: 0, count: 4096)
            guard getcwd(&buffer, buffer.count) != nil else {
                throw KeysatError(.system, "cannot read the working folder's path", errno: errno)
            }
            let folder = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return try ClientCertificate.given(certificate: certificate, key: key, workingDirectory: folder)
        default: throw KeysatError(.usage, "--client-cert and --client-key go together: give both")
        }
    }
}

/// `--signature`, `--signing-key-file` and `--[no-]keysat-signature`, of `endpoint add` and
/// `endpoint update`.
struct SignatureOptions: ParsableArguments {
    enum Kind: String, ExpressibleByArgument, CaseIterable {
        case hmac, ed25519
    }

    @Option(
        help: ArgumentHelp(
            "hmac (webhook-signature v1 only, the default) or ed25519 (also v1a, verified with a public key; a key pair is generated).",
            valueName: "kind"))
    var signature: Kind?

    @Option(
        help: ArgumentHelp(
            "With ed25519: read the signing key (whsk_…) from this file instead of generating one ('-' for standard input).",
            valueName: "path"),
        completion: .file())
    var signingKeyFile: String?

    // Two flags rather than one with an inversion, so that giving both is refused.
    @Flag(name: .customLong("keysat-signature"), help: "Send X-Keysat-Signature (the default).")
    var keysatSignatureFlag = false

    @Flag(
        name: .customLong("no-keysat-signature"),
        help: "Leave X-Keysat-Signature out, for receivers that verify only webhook-signature.")
    var noKeysatSignature = false

    var keysatSignature: Bool? { keysatSignatureFlag ? true : noKeysatSignature ? false : nil }

    var isEmpty: Bool { signature == nil && signingKeyFile == nil && keysatSignature == nil }

    func validate() throws {
        if keysatSignatureFlag && noKeysatSignature {
            throw ValidationError("'--keysat-signature' and '--no-keysat-signature' contradict each other: give one")
        }
        if signature == .hmac && signingKeyFile != nil {
            throw ValidationError("'--signing-key-file' gives an ed25519 key: it contradicts '--signature hmac'")
        }
    }

    /// The signing key asked for: from --signing-key-file, generated for --signature ed25519
    /// unless `current` already has one, removed for hmac; `nil`: no change.
    func keyChange(current: String?) throws -> EndpointSigning.Change.Key? {
        if let signingKeyFile { return .set(try signingKey(file: signingKeyFile)) }
        switch signature {
        case .ed25519:
            if current != nil { return nil }
            var generator = SystemRandomNumberGenerator()
            return .set(try AsymmetricKey.generate(using: &generator))
        case .hmac: return current == nil ? nil : .remove
        case nil: return nil
        }
    }
}

/// A `--event` pattern that is not one is a usage error (64), said with the subcommand's own
/// help; a name that is not an event type stays a data error (65), in `run`.
private func validatePatterns(_ events: [String]) throws {
    for event in events where event.contains("*") {
        do {
            try EventSubscription.validate(event)
        } catch let error as KeysatError {
            throw ValidationError(error.message)
        }
    }
}

/// A signing key (`whsk_…`) from a file. It can forge webhooks: a file others can read or
/// write is refused, as ssh refuses such a private key (group access is this project's way of
/// sharing, docs/DESIGN.md).
func signingKey(file: String) throws -> String {
    guard let bytes = try InputFile.read(file, limit: 4096, what: "signing key file", guarding: .privateKey) else {
        throw KeysatError(.data, "signing key file \(file) is larger than 4096 bytes")
    }
    return try AsymmetricKey.signingKey(bytes, source: file == "-" ? "standard input" : file)
}

/// The `whpk:` line printed with a new key pair, or nothing for an HMAC-only endpoint.
func publicKeyLine(_ endpoint: Endpoint) -> String {
    endpoint.signingKey.flatMap(AsymmetricKey.publicKeyText(ofSigningKey:)).map { "whpk: \($0)\n" } ?? ""
}

/// What `endpoint show` says of the retry schedule: how many attempts over how long, and when
/// it gives up long before auto-disable would (`givesUpLongBeforeDisable`).
/// `endpoint show`'s rate line.
func rateLine(_ settings: EndpointSettings) -> String {
    guard let limit = settings.rateLimit else { return settings.rateLimitUnreadable ? "unreadable (not sent to)" : "-" }
    return "\(limit.description) (bursts of at most \(limit.count), across runs and hosts)"
}

func retryLine(_ settings: EndpointSettings) -> String {
    let schedule = settings.retrySchedule
    var line = "\(schedule.description) (\(schedule.maximumAttempts) attempts over \(RetrySchedule.span(schedule.spanSeconds))"
    if settings.retryJitterPercent > 0 { line += ", each retry ±\(settings.retryJitterPercent) %" }
    line += ")"
    if givesUpLongBeforeDisable(settings) {
        line += "; ends long before auto-disable (\(RetrySchedule.span(DeliveryOptions().disableAfterSeconds)))"
    }
    return line
}

/// Whether the schedule dead-letters a delivery in less than half the time keysat-deliver
/// takes to disable a failing endpoint by default (`--disable-after`, 5 days): a receiver down
/// that long loses deliveries to the dead letters while its endpoint still looks enabled.
func givesUpLongBeforeDisable(_ settings: EndpointSettings) -> Bool {
    settings.retrySchedule.spanSeconds * 2 < DeliveryOptions().disableAfterSeconds
}

extension KeysatWebhooks.EndpointCommand {
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register an endpoint and print its id and secret.",
            usage: "keysat-webhooks endpoint add <url> [--event <type> ...] [--secret-file <path>] [options]",
            discussion: """
                The secret is shown in full only here, also in the Standard Webhooks form (whsec_…) \
                that those libraries take. It is generated (32 random bytes, hex) unless \
                --secret-file gives one; a secret is never taken from the command line, which every \
                user of the host can read. With --signature ed25519 the endpoint also gets an Ed25519 \
                key pair (Standard Webhooks v1a): its public key (whpk_…) is printed, for receivers, \
                which then hold nothing that could forge a webhook. Creates the database if it does \
                not exist.

                --event takes an event type, '*' (every event but keysat-deliver's own, webhook.*), or \
                a pattern 'prefix.*' matching whole segments: 'license.*' takes license.issued and \
                license.a.b, not license nor licenses.x. keysat-deliver's own events \
                (webhook.endpoint.failing, .disabled, .recovered, webhook.delivery.dead) go only to \
                endpoints that name them or a pattern such as 'webhook.*', never to the endpoint they \
                are about.
                """)

        @Argument(help: "The receiver's absolute http:// or https:// URL.")
        var url: String

        @Option(
            name: .customLong("event"),
            help: ArgumentHelp(
                "An event type or a 'prefix.*' pattern to subscribe to (repeatable; default all, '*').",
                valueName: "type"))
        var events: [String] = []

        @Option(help: ArgumentHelp("A note for operators.", valueName: "text"))
        var description: String = ""

        @Option(
            help: ArgumentHelp("Read the secret from this file ('-' for standard input).", valueName: "path"),
            completion: .file())
        var secretFile: String?

        @Flag(help: "Deliver one at a time, oldest first; a failing delivery holds back the newer ones.")
        var ordered = false

        @OptionGroup var retry: RetryOptions

        @OptionGroup var header: HeaderOptions

        @OptionGroup var certificate: CertificateOptions

        @OptionGroup var rateLimit: RateOptions

        @OptionGroup var ordering: OrderingOptions
        @OptionGroup var filter: FilterOptions

        @OptionGroup var signing: SignatureOptions

        @Flag(help: "Add it even if another endpoint has the same URL (each would get every delivery).")
        var allowDuplicate = false

        @Flag(help: "Print a JSON object (with the secret).")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func validate() throws { try validatePatterns(events) }

        func run() throws {
            let host = try EndpointURL.validate(url)
            var change = try retry.change()
            change.setHeaders = try header.read()
            change.clientCertificate = try certificate.read().map { .some($0) }
            change.rateLimit = try rateLimit.read().map { .some($0) }
            try ordering.change(into: &change)
            change.filter = try filter.read()
            let settings = try change.applied(to: EndpointSettings())
            for event in events { try EventSubscription.validate(event) }
            let secret = try endpointSecret(file: secretFile)
            var keyChange = try signing.keyChange(current: nil)
            if keyChange == .remove { keyChange = nil }
            var signingKey: String?
            if case .set(let key) = keyChange { signingKey = key }
            let store = try database.open(create: true)
            if !allowDuplicate, let twin = try store.endpoints().first(where: { $0.url == url }) {
                throw KeysatError(
                    .data,
                    "endpoint \(Display.id(twin.id, wide: false)) already has the URL \(JSONText.string(url)); add --allow-duplicate to add another (the receiver would get each event twice)"
                )
            }
            warnAboutNetworkPolicy(host: host)
            var generator = SystemRandomNumberGenerator()
            let endpoint = try store.addEndpoint(
                url: url, secret: secret, eventTypes: events, description: description, ordered: ordered,
                settings: settings,
                signing: EndpointSigning(signingKey: signingKey, keysatSignature: signing.keysatSignature ?? true),
                using: &generator)
            if json {
                try Output.standard(endpointJSON(endpoint, includeSecret: true) + "\n")
            } else {
                try Output.standard(
                    "id: \(TerminalText.escape(endpoint.id))\nsecret: \(TerminalText.escape(endpoint.secret))\n"
                        + "whsec: \(StandardWebhooks.whsec(endpoint.secret))\n" + publicKeyLine(endpoint))
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List endpoints (secrets masked).")

        @Flag(help: "Print a JSON array.")
        var json = false

        @Flag(help: "Full ids in the table, however wide it gets.")
        var wide = false

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let endpoints = try database.open(readOnly: true).endpoints()
            if json {
                try Output.standard(
                    JSONText.array(endpoints.map { endpointJSON($0, includeSecret: false) }) + "\n")
                return
            }
            var rows = [["ID", "ACTIVE", "EVENTS", "SECRET", "URL", "DESCRIPTION"]]
            for endpoint in endpoints {
                rows.append([
                    Display.id(endpoint.id, wide: wide),
                    endpoint.active ? "yes" : (endpoint.disabledReason == nil ? "no" : "no (auto)"),
                    endpoint.eventTypes.joined(separator: ",") + (endpoint.settings.filter == nil ? "" : " [filter]"),
                    endpoint.maskedSecret, endpoint.url, endpoint.description,
                ])
            }
            try Output.standard(Display.fit(Table.render(rows), wide: wide))
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one endpoint.",
            usage: "keysat-webhooks endpoint show <id> [--show-secret] [--json] [options]")

        @Argument(help: "The endpoint id.")
        var id: String

        @Flag(help: "Also print the secret in full.")
        var showSecret = false

        @Flag(help: "Print a JSON object.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let store = try database.open(readOnly: true)
            let id = try store.fullID(of: .endpoint, id)
            let endpoint = try store.endpoint(id: id)
            let pending = try store.pendingDeliveryCount(endpointID: id)
            if json {
                try Output.standard(endpointJSON(endpoint, includeSecret: showSecret) + "\n")
                return
            }
            var rows: [[String]] = [
                ["id:", endpoint.id],
                ["url:", endpoint.url],
                ["events:", endpoint.eventTypes.joined(separator: ", ")],
                ["ordered:", endpoint.ordered ? "yes (one at a time, oldest first)" : "no"],
                ["retries:", retryLine(endpoint.settings)],
                [
                    "headers:",
                    endpoint.settings.customHeaders.isEmpty
                        ? "-"
                        : endpoint.settings.customHeaders.headers.map {
                            showSecret ? $0.line : "\($0.name): … (--show-secret to see it)"
                        }.joined(separator: ", "),
                ],
                [
                    "client cert:",
                    endpoint.settings.clientCertificate.map { "\($0.certificate) (key \($0.key))" } ?? "-",
                ],
                ["rate:", rateLine(endpoint.settings)],
                ["order by:", orderByLine(endpoint.settings)],
                ["order on dead:", orderOnDeadLine(endpoint.settings)],
                ["keys held:", heldKeysLine(try store.keyBacklog()[endpoint.id])],
                ["filter:", filterLine(endpoint.settings)],
                ["active:", endpoint.active ? "yes" : "no"],
            ]
            if let problem = endpoint.settingsProblem { rows.append(["settings:", "unreadable, defaults used: \(problem)"]) }
            if let reason = endpoint.disabledReason {
                rows.append(["disabled:", "\(reason) (at \(endpoint.disabledAt ?? "?"))"])
            }
            rows.append(["description:", endpoint.description])
            rows += secretRows(endpoint)
            rows += [
                ["pending:", String(pending)], ["created:", endpoint.createdAt],
                ["updated:", endpoint.updatedAt],
            ]
            try Output.standard(Table.render(rows))
        }

        /// The secret, the signatures and their keys: masked unless --show-secret.
        private func secretRows(_ endpoint: Endpoint) -> [[String]] {
            var rows: [[String]] = []
            if showSecret {
                rows.append(["secret:", endpoint.secret])
                // The form the Standard Webhooks and Svix libraries take, as endpoint add prints it.
                rows.append(["whsec:", StandardWebhooks.whsec(endpoint.secret)])
            } else {
                rows.append(["secret:", endpoint.maskedSecret + " (--show-secret to see it)"])
            }
            if let key = endpoint.signingKey {
                rows.append(["signatures:", "ed25519 (webhook-signature v1a, then v1) and HMAC"])
                // The public half is no secret: receivers need it.
                rows.append(["public key:", AsymmetricKey.publicKeyText(ofSigningKey: key) ?? "unreadable (not a whsk_ key)"])
                rows.append(["signing key:", showSecret ? key : String(key.prefix(9)) + "… (--show-secret to see it)"])
            } else {
                rows.append(["signatures:", "HMAC (webhook-signature v1)"])
            }
            rows.append(["x-keysat-signature:", endpoint.keysatSignature ? "yes" : "no (--no-keysat-signature)"])
            return rows
        }
    }

    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change an endpoint's URL, event types, filter, description, ordering, retries, headers, client certificate or signatures.",
            usage: "keysat-webhooks endpoint update <id> [--url <url>] [--event <type> ...] [options]",
            discussion: """
                Options not given keep their value. --event replaces the whole list of event types. \
                --signature ed25519 gives an endpoint without a key pair a new one (its public key is \
                printed); --signature hmac erases it. To replace a key pair with a grace period, use \
                'endpoint rotate-secret'.
                """)

        @Argument(help: "The endpoint id.")
        var id: String

        @Option(help: "The receiver's new absolute http:// or https:// URL.")
        var url: String?

        @Option(
            name: .customLong("event"),
            help: ArgumentHelp(
                "An event type or a 'prefix.*' pattern to subscribe to (repeatable; '*' for all).",
                valueName: "type"))
        var events: [String] = []

        @Option(help: ArgumentHelp("A note for operators.", valueName: "text"))
        var description: String?

        // Two flags rather than one with an inversion, so that giving both is refused rather
        // than the last one winning.
        @Flag(name: .customLong("ordered"), help: "Deliver one at a time, oldest first.")
        var orderedFlag = false

        @Flag(name: .customLong("no-ordered"), help: "Deliver concurrently, in any order.")
        var notOrdered = false

        var ordered: Bool? { orderedFlag ? true : notOrdered ? false : nil }

        @OptionGroup var retry: RetryOptions

        @OptionGroup var header: HeaderOptions

        @OptionGroup var certificate: CertificateOptions

        @Flag(help: "Stop presenting a client certificate.")
        var noClientCert = false

        @OptionGroup var rateLimit: RateOptions

        @Flag(help: "Send as fast as the concurrency caps allow again (no rate limit).")
        var noRate = false

        @OptionGroup var ordering: OrderingOptions

        @Flag(help: "Derive no ordering key from the event's data any more.")
        var noOrderBy = false

        @OptionGroup var filter: FilterOptions

        @Flag(help: "Send every event it subscribes to again (no filter); later events only.")
        var noFilter = false

        @Option(
            name: .customLong("remove-header"),
            help: ArgumentHelp("Stop sending the header of this name (repeatable).", valueName: "name"))
        var removeHeaders: [String] = []

        @OptionGroup var signing: SignatureOptions

        @Flag(help: "Print the endpoint as a JSON object.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            if orderedFlag && notOrdered {
                throw ValidationError("'--ordered' and '--no-ordered' contradict each other: give one")
            }
            try validatePatterns(events)
            if url == nil && events.isEmpty && description == nil && ordered == nil && retry.retrySchedule == nil
                && retry.retryJitter == nil && header.isEmpty && removeHeaders.isEmpty
                && certificate.clientCert == nil && certificate.clientKey == nil && !noClientCert && signing.isEmpty
                && rateLimit.rate == nil && !noRate && ordering.isEmpty && !noOrderBy && filter.filter == nil
                && !noFilter
            {
                throw ValidationError(
                    "nothing to change: give --url, --event, --description, --[no-]ordered, --retry-schedule, --retry-jitter, --header, --header-file, --remove-header, --client-cert, --no-client-cert, --rate, --no-rate, --order-by, --no-order-by, --order-on-dead, --filter, --no-filter, --signature or --[no-]keysat-signature")
            }
        }

        func run() throws {
            let host = try url.map { try EndpointURL.validate($0) }
            for event in events { try EventSubscription.validate(event) }
            var settings = try retry.change()
            settings.setHeaders = try header.read()
            settings.removeHeaders = removeHeaders
            if noClientCert {
                guard certificate.clientCert == nil && certificate.clientKey == nil else {
                    throw KeysatError(.usage, "--no-client-cert and --client-cert contradict each other: give one")
                }
                settings.clientCertificate = .some(nil)
            } else if let pair = try certificate.read() {
                settings.clientCertificate = .some(pair)
            }
            if noRate {
                guard rateLimit.rate == nil else {
                    throw KeysatError(.usage, "--no-rate and --rate contradict each other: give one")
                }
                settings.rateLimit = .some(nil)
            } else if let limit = try rateLimit.read() {
                settings.rateLimit = .some(limit)
            }
            if noOrderBy && ordering.orderBy != nil {
                throw KeysatError(.usage, "--no-order-by and --order-by contradict each other: give one")
            }
            try ordering.change(into: &settings)
            if noOrderBy { settings.orderBy = .some(nil) }
            if noFilter {
                guard filter.filter == nil else {
                    throw KeysatError(.usage, "--no-filter and --filter contradict each other: give one")
                }
                settings.filter = .some(nil)
            } else {
                settings.filter = try filter.read()
            }
            // Read before anything is written: a malformed key file changes nothing.
            let keyFromFile = try signing.signingKeyFile.map { try signingKey(file: $0) }
            if let host { warnAboutNetworkPolicy(host: host) }
            let store = try database.open()
            let id = try store.fullID(of: .endpoint, id)
            var endpoint = try store.updateEndpoint(
                id: id, url: url, eventTypes: events.isEmpty ? nil : events, description: description,
                ordered: ordered, settings: settings)
            if !signing.isEmpty {
                let key = try keyFromFile.map { EndpointSigning.Change.Key.set($0) }
                    ?? signing.keyChange(current: endpoint.signingKey)
                let hadKey = endpoint.signingKey
                endpoint = try store.updateSigning(
                    id: id, EndpointSigning.Change(signingKey: key, keysatSignature: signing.keysatSignature))
                if case .remove = key { warnUnlessErased(store) }
                if !json, endpoint.signingKey != hadKey { try Output.standard(publicKeyLine(endpoint)) }
            }
            if json { try Output.standard(endpointJSON(endpoint, includeSecret: false) + "\n") }
        }
    }

    struct RotateSecret: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give an endpoint a new secret, keeping the old one valid for a grace period.",
            usage: "keysat-webhooks endpoint rotate-secret <id> [--grace <duration>] [options]",
            discussion: """
                While the grace period lasts, deliveries carry signatures made with both secrets (the \
                new one first in webhook-signature; X-Keysat-Signature with the new one and \
                X-Keysat-Previous-Signature with the old), so the receiver can switch at any moment. \
                An endpoint with an ed25519 key pair gets a new one too, and webhook-signature carries \
                both v1a signatures while the grace lasts. Afterwards keysat-deliver erases the old \
                secret and key from the database. Prints the new secret in both forms, and the new \
                public key.
                """)

        @Argument(help: "The endpoint id.")
        var id: String

        @Option(
            help: ArgumentHelp(
                "How long the old secret keeps signing; 0 stops it at once.",
                valueName: "duration"))
        var grace = "24h"

        @Option(
            help: ArgumentHelp(
                "Read the new secret from this file ('-' for standard input) instead of generating one.",
                valueName: "path"),
            completion: .file())
        var secretFile: String?

        @Option(
            help: ArgumentHelp(
                "Read the new ed25519 signing key (whsk_…) from this file instead of generating one.",
                valueName: "path"),
            completion: .file())
        var signingKeyFile: String?

        @Flag(help: "Print a JSON object (with the new secret).")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            _ = try DurationText.option(grace, named: "--grace", minimum: 1, zero: "the old secret stops at once", whole: true)
        }

        func run() throws {
            let secret = try endpointSecret(file: secretFile)
            let keyFromFile = try signingKeyFile.map { try signingKey(file: $0) }
            let store = try database.open()
            let id = try store.fullID(of: .endpoint, id)
            // A key pair is replaced with the secret; an HMAC-only endpoint gets one only from a file.
            var newKey = keyFromFile
            if newKey == nil, try store.endpoint(id: id).signingKey != nil {
                var generator = SystemRandomNumberGenerator()
                newKey = try AsymmetricKey.generate(using: &generator)
            }
            let endpoint = try store.rotateSecret(
                id: id, to: secret, signingKey: newKey,
                graceSeconds: Int64(try DurationText.option(grace, named: "--grace", minimum: 1, zero: "", whole: true)))
            let expires = try store.previousSecretExpiry(id: id)
            if expires == nil { warnUnlessErased(store) }
            if json {
                var object = endpointJSON(endpoint, includeSecret: true)
                object.removeLast()
                try Output.standard(object + ",\"previous_secret_expires_at\":\(JSONText.string(expires))}\n")
            } else {
                try Output.standard(
                    "id: \(TerminalText.escape(endpoint.id))\nsecret: \(TerminalText.escape(endpoint.secret))\n"
                        + "whsec: \(StandardWebhooks.whsec(endpoint.secret))\n" + publicKeyLine(endpoint)
                        + "previous secret valid until: \(TerminalText.escape(expires ?? "no longer valid"))\n"
                )
            }
        }
    }

    struct Enable: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enable an endpoint: new events reach it again.",
            discussion: """
                Resets its failing streak, so that keysat-deliver's auto-disable counts from now. \
                With --requeue, also re-queues, in the same transaction and as 'deliveries retry' \
                does (same ids, attempts back to 0), the deliveries its outage dead-lettered: every \
                one dead-lettered because it was disabled ("endpoint deleted or disabled"), and, \
                when keysat-deliver disabled it, every one created or attempted since its failing \
                streak began (or, after a 410 Gone, since it was disabled). A run's probe of an \
                endpoint it disabled for failing does the same when the receiver answers again \
                (keysat-deliver(1)).
                """)

        @Argument(help: "The endpoint id.")
        var id: String

        @Flag(help: "Also re-queue the deliveries its outage dead-lettered.")
        var requeue = false

        @Flag(help: "Print the endpoint as a JSON object (with \"requeued\" when --requeue is given).")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let store = try database.open()
            let id = try store.fullID(of: .endpoint, id)
            let (_, requeued) = try store.enableEndpoint(id: id, requeue: requeue)
            if json {
                var object = endpointJSON(try store.endpoint(id: id), includeSecret: false)
                if requeue { object = String(object.dropLast()) + ",\"requeued\":\(requeued)}" }
                try Output.standard(object + "\n")
            } else if requeue {
                try Output.standard("\(requeued) deliver\(requeued == 1 ? "y" : "ies") re-queued\n")
            }
        }
    }

    struct Disable: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Disable an endpoint: no new deliveries; pending ones are dead-lettered by the next run.",
            discussion: "The endpoint and its history stay; 'enable' undoes it.")

        @Argument(help: "The endpoint id.")
        var id: String

        @Flag(help: "Print the endpoint as a JSON object.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let store = try database.open()
            let id = try store.fullID(of: .endpoint, id)
            try store.setEndpointActive(id: id, false)
            if json {
                try Output.standard(endpointJSON(try store.endpoint(id: id), includeSecret: false) + "\n")
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete an endpoint together with its delivery history.",
            discussion: """
                Refused while the endpoint has pending deliveries, unless --force is given. \
                To keep the history, disable the endpoint instead. Prints how many deliveries were deleted.
                """)

        @Argument(help: "The endpoint id.")
        var id: String

        @Flag(help: "Delete it even with pending deliveries.")
        var force = false

        @Flag(help: "Print {\"id\", \"deliveries_deleted\"} as a JSON object.")
        var json = false

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let store = try database.open()
            let id = try store.fullID(of: .endpoint, id)
            let deleted = try store.removeEndpoint(id: id, force: force)
            warnUnlessErased(store)
            if json {
                try Output.standard(
                    JSONText.object([("id", JSONText.string(id)), ("deliveries_deleted", String(deleted))])
                        + "\n")
                return
            }
            try Output.standard(
                "removed endpoint \(TerminalText.escape(id)) and \(deleted) deliver\(deleted == 1 ? "y" : "ies")\n"
            )
        }
    }
}

/// After a secret was replaced or deleted: erases the old one from the database file and its
/// WAL at once, or says when it will be gone.
func warnUnlessErased(_ store: any WebhookBackend) {
    if (try? store.checkpointErasing()) == true { return }
    Output.error(
        "keysat-webhooks: warning: another connection is reading \(store.location), so the old secret stays in its WAL until that read ends and a checkpoint runs (at the end of the next keysat-deliver run that sends anything, or when the last connection closes)\n"
    )
}
