/// Headers an operator has an endpoint's requests carry (`endpoint add|update --header`,
/// `--header-file`): an `Authorization` token, a tenant id. Sent on every attempt, after the
/// ones this project sets, which they can never replace.
///
/// Stored in `webhook_endpoints.custom_headers` as a JSON array of `"Name: value"` strings
/// (NULL: none, as in Keysat's rows). Values may be secrets: every listing, log and JSON
/// output shows names only, unless asked for the secret (`endpoint show --show-secret`).
public struct CustomHeaders: Sendable, Equatable {
    public struct Header: Sendable, Equatable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }

        public var line: String { "\(name): \(value)" }
    }

    /// In the order given; names differ, case aside.
    public private(set) var headers: [Header] = []

    public static let maximumCount = 20
    public static let maximumValueBytes = 4096
    public static let maximumTotalBytes = 8192

    public init() {}

    public init(_ headers: [Header]) throws {
        for header in headers { try set(header) }
    }

    public var isEmpty: Bool { headers.isEmpty }
    public var names: [String] { headers.map(\.name) }

    /// Names a request's own headers use, which a custom header may not set: those this project
    /// signs or sets, and those that change how HTTP carries the request.
    static let reservedNames: Set<String> = [
        "content-type", "content-length", "host", "user-agent", "transfer-encoding", "connection",
        "keep-alive", "te", "trailer", "upgrade", "expect", "proxy-connection", "content-encoding",
    ]
    static let reservedPrefixes = ["webhook-", "x-keysat-"]

    /// Reads `Name: value` as given on a command line or stored; the value is trimmed of spaces.
    /// - Throws: `KeysatError` (usage, 64) saying what is wrong.
    public static func parse(_ line: String) throws -> Header {
        guard let colon = line.firstIndex(of: ":") else {
            // Not the line itself: without its colon it may be all secret.
            throw KeysatError(.usage, "a header is not 'Name: value' (it has no colon)")
        }
        return try checked(Header(name: String(line[..<colon]), value: String(line[line.index(after: colon)...]).trimmingSpaces))
    }

    /// `header` if a run may send it.
    public static func checked(_ header: Header) throws -> Header {
        let name = header.name
        guard HeaderLine.isToken(Array(name.utf8)), name.utf8.count <= 256 else {
            throw KeysatError(
                .usage, "header name \(JSONText.string(Self.shown(name))) is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~)")
        }
        let lower = name.lowercased()
        if reservedNames.contains(lower) || reservedPrefixes.contains(where: { lower.hasPrefix($0) }) {
            throw KeysatError(
                .usage,
                "header \(name) is set by keysat-deliver itself (content-type, content-length, host, user-agent, webhook-*, x-keysat-*, and HTTP's own framing headers cannot be replaced)")
        }
        guard HeaderLine.isSafeValue(header.value.utf8), !header.value.isEmpty else {
            throw KeysatError(
                .usage, "header \(name): its value is empty or holds control characters (line ends, tabs, NUL)")
        }
        guard header.value.utf8.count <= maximumValueBytes else {
            throw KeysatError(.usage, "header \(name): its value is longer than \(maximumValueBytes) bytes")
        }
        return header
    }

    /// Adds `header`, or replaces the one of the same name (case aside).
    public mutating func set(_ header: Header) throws {
        let header = try Self.checked(header)
        if let index = headers.firstIndex(where: { $0.name.lowercased() == header.name.lowercased() }) {
            headers[index] = header
        } else {
            headers.append(header)
        }
        guard headers.count <= Self.maximumCount else {
            throw KeysatError(.usage, "more than \(Self.maximumCount) custom headers")
        }
        guard headers.reduce(0, { $0 + $1.line.utf8.count }) <= Self.maximumTotalBytes else {
            throw KeysatError(.usage, "custom headers longer than \(Self.maximumTotalBytes) bytes in all")
        }
    }

    /// Removes the header of this name (case aside); `false` when there was none.
    @discardableResult
    public mutating func remove(_ name: String) -> Bool {
        let before = headers.count
        headers.removeAll { $0.name.lowercased() == name.lowercased() }
        return headers.count != before
    }

    /// As stored: NULL (`nil`) for none.
    public var stored: String? {
        headers.isEmpty ? nil : JSONText.array(headers.map { JSONText.string($0.line) })
    }

    /// The headers a stored value holds; `nil` when it holds something a run may not send
    /// (another program wrote it), which the caller reports rather than sending without them.
    public static func fromStored(_ text: String?) -> CustomHeaders? {
        guard let text, !text.isEmpty else { return CustomHeaders() }
        guard text.utf8.first == UInt8(ascii: "["), let lines = JSONStrings.topLevel(text) else { return nil }
        var headers = CustomHeaders()
        for line in lines {
            guard let header = try? parse(line), (try? headers.set(header)) != nil else { return nil }
        }
        return headers
    }

    /// At most 64 characters of `text`, for a message.
    private static func shown(_ text: String) -> String { text.count <= 64 ? text : String(text.prefix(64)) + "…" }
}
