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
