/// A receiver of webhooks, as stored in `webhook_endpoints`.
public struct Endpoint: Sendable, Equatable {
    public var id: String
    public var url: String
    /// The shared HMAC secret: 64 lowercase hex digits for endpoints made by these tools.
    public var secret: String
    /// Subscribed event types: names, `"*"` (every event outside `webhook.`) and `PREFIX.*`
    /// patterns (`EventSubscription`).
    public var eventTypes: [String]
    public var active: Bool
    public var description: String
    public var createdAt: String
    public var updatedAt: String
    /// Why keysat-deliver disabled the endpoint by itself, and when (`nil` otherwise).
    public var disabledReason: String?
    public var disabledAt: String?
    /// Deliveries go one at a time, oldest first; a failing one holds back the newer ones.
    public var ordered = false
    /// How its deliveries are retried (issue 22).
    public var settings = EndpointSettings()
    /// What is wrong with settings another program wrote (the defaults are used instead).
    public var settingsProblem: String?
    /// The Standard Webhooks `v1a` (Ed25519) signing key, `whsk_…`; `nil` (Keysat's rows): HMAC
    /// signatures only.
    public var signingKey: String?
    /// Whether requests carry `X-Keysat-Signature` (`keysat_signature` NULL or not 0).
    public var keysatSignature = true

    public init(
        id: String, url: String, secret: String, eventTypes: [String], active: Bool,
        description: String, createdAt: String, updatedAt: String
    ) {
        self.id = id
        self.url = url
        self.secret = secret
        self.eventTypes = eventTypes
        self.active = active
        self.description = description
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// The secret as shown in listings: its first four characters, the rest hidden.
    public var maskedSecret: String { String(secret.prefix(4)) + "…" }
}

/// This project's per-endpoint delivery settings, in columns of their own on
/// `webhook_endpoints` (NULL in Keysat's own rows: the defaults, Keysat's behaviour).
public struct EndpointSettings: Sendable, Equatable {
    /// After which failed attempts, how long until the next; Keysat's ladder by default.
    public var retrySchedule = RetrySchedule.keysat
    /// Retries spread by up to this percentage of their delay, either way (0: Keysat's exact times).
    public var retryJitterPercent = 0
    /// Headers sent on every attempt after this project's own.
    public var customHeaders = CustomHeaders()
    /// The stored headers could not be read (another program wrote them): the endpoint is not
    /// sent to until they are repaired, rather than sent to without them (an `Authorization`
    /// missing would fail every attempt, and a header half read could go to the wrong place).
    public var customHeadersUnreadable = false
    /// The client certificate its TLS handshakes present, if any.
    public var clientCertificate: ClientCertificate?
    /// Only one of the certificate's two paths is stored (another program wrote it): not sent
    /// to until repaired, as with unreadable headers.
    public var clientCertificateUnreadable = false
    /// How fast it may be sent to; `nil`: as fast as the caps allow.
    public var rateLimit: RateLimit?
    /// The stored rate is not one (another program wrote it): not sent to until repaired, since
    /// sending at full speed could be what the limit was set to prevent.
    public var rateLimitUnreadable = false
    /// The field of the event's data whose value is a delivery's ordering key
    /// (`OrderingKey.derive`); `nil`: only `keysat-enqueue --ordering-key` gives keys.
    public var orderBy: OrderByPath?
    /// With `--order-on-dead hold`, a key whose oldest delivery is dead waits for an operator
    /// (`deliveries retry` or `deliveries drop`); by default it moves on to the next.
    public var holdOnDead = false
    /// The content filter (`EventFilter`, issue 23) as stored; `nil`: every event subscribed
    /// to. keysat-enqueue judges it; a run holds the endpoint while it is not a filter this
    /// program reads (`EventFilter.isReadable`, asked once per run, not per row).
    public var filter: String?

    /// Whether a run must hold the endpoint's deliveries rather than send them as stored.
    public var mayNotSend: Bool { customHeadersUnreadable || clientCertificateUnreadable || rateLimitUnreadable }

    public static let maximumJitterPercent = 100

    /// Keysat's behaviour: what NULL columns stand for.
    public static let defaults = EndpointSettings()

    public init() {}

    /// The settings stored in `retry_schedule` and `retry_jitter` (as text: another program may
    /// have written anything there), and what is wrong with them: a value that is not one is
    /// replaced by the default and said, never guessed at.
    public static func fromStored(
        retrySchedule: String?, retryJitter: String?, customHeaders: String? = nil, clientCert: String? = nil,
        clientKey: String? = nil, rateLimit: String? = nil, filter: String? = nil, orderBy: String? = nil,
        orderOnDead: String? = nil
    ) -> (EndpointSettings, problem: String?) {
        var settings = EndpointSettings()
        settings.filter = filter
        var problems: [String] = []
        if let schedule = RetrySchedule.fromStored(retrySchedule) {
            settings.retrySchedule = schedule
        } else {
            problems.append("retry_schedule \(JSONText.string(retrySchedule ?? "")) is not a schedule (Keysat's ladder used)")
        }
        if let retryJitter, !retryJitter.isEmpty {
            if let percent = Int(retryJitter), (0...maximumJitterPercent).contains(percent) {
                settings.retryJitterPercent = percent
            } else {
                problems.append("retry_jitter \(JSONText.string(retryJitter)) is not a percentage from 0 to 100 (0 used)")
            }
        }
        if let headers = CustomHeaders.fromStored(customHeaders) {
            settings.customHeaders = headers
        } else {
            // Not the text: it may hold a secret.
            settings.customHeadersUnreadable = true
            problems.append("custom_headers is not a JSON array of 'Name: value' lines this program may send (not sent to until repaired)")
        }
        switch (clientCert.flatMap { $0.isEmpty ? nil : $0 }, clientKey.flatMap { $0.isEmpty ? nil : $0 }) {
        case (nil, nil): break
        case (let certificate?, let key?): settings.clientCertificate = ClientCertificate(certificate: certificate, key: key)
        default:
            settings.clientCertificateUnreadable = true
            problems.append("client_cert and client_key must both be set or both be NULL (not sent to until repaired)")
        }
        switch RateLimit.fromStored(rateLimit) {
        case nil: break
        case .success(let limit): settings.rateLimit = limit
        case .failure:
            settings.rateLimitUnreadable = true
            problems.append("rate_limit \(JSONText.string(rateLimit ?? "")) is not a rate such as 10/s or 300/min (not sent to until repaired)")
        }
        readOrdering(orderBy: orderBy, orderOnDead: orderOnDead, into: &settings, problems: &problems)
        return (settings, problems.isEmpty ? nil : problems.joined(separator: "; "))
    }

    /// `order_by` and `order_on_dead` as stored (NULL: none, move on), checked: another
    /// program's text that is not a path orders nothing; one that is not a mode moves on.
    private static func readOrdering(
        orderBy: String?, orderOnDead: String?, into settings: inout EndpointSettings, problems: inout [String]
    ) {
        if let orderBy {
            if let path = OrderByPath(orderBy) {
                settings.orderBy = path
            } else {
                problems.append("order_by \(JSONText.string(orderBy)) is not a field path (no key derived)")
            }
        }
        switch orderOnDead {
        case nil, "move-on": break
        case "hold": settings.holdOnDead = true
        case let other?: problems.append("order_on_dead \(JSONText.string(other)) is not hold or move-on (move-on used)")
        }
    }

    /// `order_on_dead` as stored: NULL for move-on, the default.
    public var storedOrderOnDead: String? { holdOnDead ? "hold" : nil }

    /// A change made by `endpoint update`: `nil` keeps the current value.
    public struct Change: Sendable, Equatable {
        public var retrySchedule: RetrySchedule?
        public var retryJitterPercent: Int?
        /// Headers to add or replace, then names to remove.
        public var setHeaders: [CustomHeaders.Header] = []
        public var removeHeaders: [String] = []
        /// A new client certificate (`.some(nil)`: none any more).
        public var clientCertificate: ClientCertificate??
        /// A new rate limit (`.some(nil)`: none any more).
        public var rateLimit: RateLimit??
        /// A new `--order-by` (`.some(nil)`: none any more).
        public var orderBy: OrderByPath??
        /// A new `--order-on-dead` (true: hold).
        public var holdOnDead: Bool?
        /// A new content filter, compact text (`.some(nil)`: none any more).
        public var filter: String??

        public init(retrySchedule: RetrySchedule? = nil, retryJitterPercent: Int? = nil) {
            self.retrySchedule = retrySchedule
            self.retryJitterPercent = retryJitterPercent
        }

        public var isEmpty: Bool { self == Change() }
        public var changesHeaders: Bool { !setHeaders.isEmpty || !removeHeaders.isEmpty }

        /// - Throws: `KeysatError` (usage) when the headers would be too many or too long,
        ///   or a name to remove is not there.
        public func applied(to settings: EndpointSettings) throws -> EndpointSettings {
            var changed = settings
            if let retrySchedule { changed.retrySchedule = retrySchedule }
            if let retryJitterPercent { changed.retryJitterPercent = retryJitterPercent }
            if let clientCertificate {
                changed.clientCertificate = clientCertificate
                changed.clientCertificateUnreadable = false
            }
            if let rateLimit {
                changed.rateLimit = rateLimit
                changed.rateLimitUnreadable = false
            }
            if let orderBy { changed.orderBy = orderBy }
            if let holdOnDead { changed.holdOnDead = holdOnDead }
            if let filter { changed.filter = filter }
            if changesHeaders {
                // Unreadable stored headers are replaced only by a whole new list.
                if changed.customHeadersUnreadable { changed.customHeaders = CustomHeaders() }
                changed.customHeadersUnreadable = false
                for header in setHeaders { try changed.customHeaders.set(header) }
                for name in removeHeaders where !changed.customHeaders.remove(name) {
                    throw KeysatError(.usage, "--remove-header \(name): the endpoint has no such header")
                }
            }
            return changed
        }
    }
}

/// Checks endpoint URLs: absolute `http` or `https` with a host.
public enum EndpointURL {
    /// - Returns: the host (an IPv6 address without its brackets).
    /// - Throws: `KeysatError` (data, 65) saying why `url` is refused.
    @discardableResult
    public static func validate(_ url: String) throws -> String {
        let lower = url.lowercased()
        let rest: Substring
        if lower.hasPrefix("https://") {
            rest = url.dropFirst(8)
        } else if lower.hasPrefix("http://") {
            rest = url.dropFirst(7)
        } else {
            throw KeysatError(
                .data, "URL \(JSONText.string(url)) must be absolute and start with http:// or https://")
        }
        if url.utf8.count > 2048 {
            throw KeysatError(.data, "URL is longer than 2048 characters")
        }
        if url.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F || !$0.isASCII }) {
            throw KeysatError(
                .data,
                "URL \(JSONText.string(url)) contains spaces, control or non-ASCII characters (percent-encode them)"
            )
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if authority.contains("@") {
            throw KeysatError(
                .data, "URL must not carry user credentials; sign with the endpoint secret instead")
        }
        var host = authority
        var port: Substring = ""
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else {
                throw KeysatError(.data, "URL \(JSONText.string(url)) has an unterminated IPv6 address")
            }
            let after = host[host.index(after: close)...]
            port = after.hasPrefix(":") ? after.dropFirst() : ""
            if !after.isEmpty && !after.hasPrefix(":") {
                throw KeysatError(.data, "URL \(JSONText.string(url)) has a malformed host")
            }
            host = host[host.index(after: host.startIndex)..<close]
        } else if let colon = host.lastIndex(of: ":") {
            port = host[host.index(after: colon)...]
            host = host[..<colon]
            if port.isEmpty {
                throw KeysatError(.data, "URL \(JSONText.string(url)) has an empty port")
            }
        }
        if host.isEmpty {
            throw KeysatError(.data, "URL \(JSONText.string(url)) has no host")
        }
        if !port.isEmpty {
            guard port.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(port),
                (1...65535).contains(number)
            else {
                throw KeysatError(.data, "URL \(JSONText.string(url)) has an invalid port")
            }
        }
        return String(host)
    }
}

/// How an endpoint's requests are signed beyond Keysat's HMAC (issue 22): a Standard Webhooks
/// `v1a` (Ed25519) signing key, and whether `X-Keysat-Signature` is sent.
public struct EndpointSigning: Sendable, Equatable {
    /// `whsk_…`; `nil`: HMAC only.
    public var signingKey: String?
    public var keysatSignature = true

    public init(signingKey: String? = nil, keysatSignature: Bool = true) {
        self.signingKey = signingKey
        self.keysatSignature = keysatSignature
    }

    /// A change made by `endpoint update`: `nil` keeps the current value.
    public struct Change: Sendable, Equatable {
        public enum Key: Sendable, Equatable {
            /// A new signing key; the previous one (from a rotation) is dropped.
            case set(String)
            /// HMAC only again: the signing key and any previous one are erased.
            case remove
        }

        public var signingKey: Key?
        public var keysatSignature: Bool?

        public init(signingKey: Key? = nil, keysatSignature: Bool? = nil) {
            self.signingKey = signingKey
            self.keysatSignature = keysatSignature
        }

        public var isEmpty: Bool { self == Change() }
    }
}
