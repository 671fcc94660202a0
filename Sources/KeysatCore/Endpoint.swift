/// A receiver of webhooks, as stored in `webhook_endpoints`.
public struct Endpoint: Sendable, Equatable {
    public var id: String
    public var url: String
    /// The shared HMAC secret: 64 lowercase hex digits for endpoints made by these tools.
    public var secret: String
    /// Subscribed event types; `"*"` means all.
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

    public static let maximumJitterPercent = 100

    public init() {}

    /// The settings stored in `retry_schedule` and `retry_jitter` (as text: another program may
    /// have written anything there), and what is wrong with them: a value that is not one is
    /// replaced by the default and said, never guessed at.
    public static func fromStored(retrySchedule: String?, retryJitter: String?) -> (EndpointSettings, problem: String?) {
        var settings = EndpointSettings()
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
        return (settings, problems.isEmpty ? nil : problems.joined(separator: "; "))
    }

    /// A change made by `endpoint update`: `nil` keeps the current value.
    public struct Change: Sendable, Equatable {
        public var retrySchedule: RetrySchedule?
        public var retryJitterPercent: Int?

        public init(retrySchedule: RetrySchedule? = nil, retryJitterPercent: Int? = nil) {
            self.retrySchedule = retrySchedule
            self.retryJitterPercent = retryJitterPercent
        }

        public var isEmpty: Bool { self == Change() }

        public func applied(to settings: EndpointSettings) -> EndpointSettings {
            var changed = settings
            if let retrySchedule { changed.retrySchedule = retrySchedule }
            if let retryJitterPercent { changed.retryJitterPercent = retryJitterPercent }
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
