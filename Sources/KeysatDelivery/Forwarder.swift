public import KeysatCore
import KeysatStore

/// Passes received webhooks on to a local application (`keysat-webhooks listen --forward-to`):
/// the same body and headers, by the same HTTP engine as a run, and the application's status back.
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

    /// - Parameter url: the application's URL, which the operator chose: no network policy applies.
    public init(url: String, timeoutSeconds: Double, clock: any TimeSource = SystemClock()) throws {
        _ = try EndpointURL.validate(url)
        var settings = HTTPEngine.Settings()
        settings.timeoutMS = DurationText.milliseconds(timeoutSeconds)
        settings.connectTimeoutMS = min(settings.connectTimeoutMS, settings.timeoutMS)
        settings.policy = NetworkPolicy(allowed: [NetworkPolicy.Network("::/0")!])
        self.url = url
        self.clock = clock
        engine = try HTTPEngine(settings: settings, maximumConnections: 4, clock: clock)
    }

    /// Headers that belong to one connection, not to the request: curl writes its own.
    static let hopByHop: Set<String> = [
        "host", "content-length", "connection", "transfer-encoding", "expect", "keep-alive", "te", "upgrade",
    ]

    /// Sends `body` with `headers` (minus the hop-by-hop ones) and waits for the answer.
    public func forward(headers: [(String, String)], body: [UInt8]) throws -> Result {
        tag += 1
        var lines = headers.filter { !Forwarder.hopByHop.contains($0.0.lowercased()) }.map {
            "\($0.0): \($0.1)"
        }
        // curl adds an Accept header of its own unless told not to; the sender's is kept.
        if !headers.contains(where: { $0.0.lowercased() == "accept" }) { lines.append("Accept:") }
        let started = clock.now()
        try engine.start(HTTPRequest(url: url, headers: lines, body: body, tag: tag))
        while true {
            for result in try engine.poll(timeoutMS: 100) where result.tag == tag {
                let elapsed = Int((clock.now().microseconds - started.microseconds) / 1000)
                return Result(status: result.status, error: result.failure?.message, milliseconds: elapsed)
            }
        }
    }
}
