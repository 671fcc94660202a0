public import KeysatCore
import KeysatStore

/// Passes received webhooks on to a local application (`keysat-webhooks listen --forward-to`):
/// the same body and headers, by the same HTTP engine as a run, and the application's status back.
/// Not shared between threads: `listen` gives each of its forwarding threads one.
public final class Forwarder {
    private let url: String
    private let engine: HTTPEngine
    private let clock: any TimeSource
    private var tag = 0

    /// What the application answered.
    public struct Result: Sendable {
        /// Its status, or `nil` when it could not be reached.
        public var status: Int?
        public var error: String?
        public var milliseconds: Int
    }

    /// The shortest time limit: libcurl reads 0 ms as "no limit", so a limit that rounds to 0
    /// would wait for ever on an application that never answers (issue 20).
    public static let minimumTimeoutSeconds = 0.001

    /// - Parameters:
    ///   - url: the application's URL, which the operator chose: no network policy applies.
    ///   - timeoutSeconds: at least `minimumTimeoutSeconds`; rounded up to whole milliseconds.
    public init(url: String, timeoutSeconds: Double, clock: any TimeSource = SystemClock()) throws {
        _ = try EndpointURL.validate(url)
        guard timeoutSeconds >= Forwarder.minimumTimeoutSeconds else {
            throw KeysatError(.usage, "the forwarding time limit must be at least 1 ms")
        }
        var settings = HTTPEngine.Settings()
        settings.timeoutMS = DurationText.milliseconds(timeoutSeconds)
        settings.connectTimeoutMS = min(settings.connectTimeoutMS, settings.timeoutMS)
        settings.policy = NetworkPolicy(allowed: [NetworkPolicy.Network("::/0")!])
        settings.userAgent = nil  // the sender's is passed on, not joined by ours
        self.url = url
        self.clock = clock
        engine = try HTTPEngine(settings: settings, maximumConnections: 1, clock: clock)
    }

    /// Headers that belong to one connection, not to the request: curl writes its own. Compared
    /// by exact name, which is sound only because every name was checked to be a token first.
    static let hopByHop: Set<String> = [
        "host", "content-length", "connection", "transfer-encoding", "expect", "keep-alive", "te", "upgrade",
        "proxy-connection", "trailer",
    ]

    /// The header lines as curl must be given them to send what the sender sent: without the
    /// hop-by-hop ones (and those its `Connection` header names, RFC 9110 §7.6.1); an empty
    /// value as `Name;` (`Name:` tells curl to send none); and curl's own defaults it would add
    /// (`Accept`, a form `Content-Type` for a body) removed when the sender sent none.
    static func lines(_ headers: [(String, String)]) -> [String] {
        var dropped = hopByHop
        for (name, value) in headers where name.lowercased() == "connection" {
            for token in value.split(separator: ",") {
                dropped.insert(String(token).trimmingSpaces.lowercased())
            }
        }
        var lines = headers.filter { !dropped.contains($0.0.lowercased()) }.map {
            $0.1.isEmpty ? "\($0.0);" : "\($0.0): \($0.1)"
        }
        for name in ["Accept", "Content-Type"] where !headers.contains(where: { $0.0.lowercased() == name.lowercased() }) {
            lines.append(name + ":")
        }
        return lines
    }

    /// Sends `body` with `headers` (minus the hop-by-hop ones) and waits for the answer.
    ///
    /// Every header line passes `HeaderLine`, the check a run's own lines pass; a request with
    /// one that does not is not sent (the listener refuses such requests before this).
    public func forward(headers: [(String, String)], body: [UInt8]) -> Result {
        guard headers.allSatisfy({ HeaderLine.isSafe(name: $0.0, value: $0.1) }) else {
            return Result(status: nil, error: "a header line is not safe to pass on", milliseconds: 0)
        }
        tag += 1
        let lines = Self.lines(headers)
        let started = clock.now()
        let elapsed = { Int((self.clock.now().microseconds - started.microseconds) / 1000) }
        do {
            try engine.start(HTTPRequest(url: url, headers: lines, body: body, tag: tag))
            while true {
                for result in try engine.poll(timeoutMS: 100) where result.tag == tag {
                    return Result(
                        status: result.status, error: result.failure?.message, milliseconds: elapsed())
                }
            }
        } catch {
            return Result(status: nil, error: "\(error)", milliseconds: elapsed())
        }
    }
}
