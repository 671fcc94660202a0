import KeysatCore
import KeysatStore

/// One POST to send.
struct HTTPRequest {
    var url: String
    var headers: [String]
    var body: [UInt8]
    /// The caller's handle on the request, returned with its result.
    var tag: Int
    /// The client certificate the TLS handshake presents (mutual TLS), if any.
    var clientCertificate: ClientCertificate? = nil
}

/// What became of a request: the facts, not a verdict (`OutcomePolicy` decides what they mean).
struct HTTPResult {
    /// Why no status line was received.
    enum Failure: Equatable {
        /// The network policy refused to connect to this address.
        case refused(address: String)
        /// The URL is plain http and the run allows https only.
        case plainHTTPRefused
        /// curl failed: its code and message (the error buffer, or `curl_easy_strerror`).
        case transport(code: Int, message: String)
        /// This host ran out of file descriptors or memory before the request left it (its
        /// socket could not be made): not the receiver's failure, and no attempt to record.
        case exhausted(errno: Int32)

        /// What an operator reads in `last_error` (after "request error: ").
        var message: String {
            switch self {
            case .refused(let address): "destination \(address) is not allowed by the network policy"
            case .plainHTTPRefused: "plain http is refused by --https-only"
            case .transport(_, let message): message
            case .exhausted(let code): "cannot open a connection: \(SystemCall.describe(code))"
            }
        }
    }

    var tag: Int
    /// The final status code, when the receiver sent a status line (even if the body then broke off).
    var status: Int?
    /// Why there is no status; `nil` when there is one.
    var failure: Failure?
    /// The size of the request body that was sent.
    var requestBytes = 0
    /// The `Retry-After` header, if the receiver sent one.
    var retryAfter: String?
    /// The start of the response body (at most the engine's `maximumResponseBytes`).
    var body: [UInt8]
    var started: Timestamp
    var finished: Timestamp

    /// The address the network policy refused, if that is why the request failed.
    var refusedAddress: String? {
        if case .refused(let address) = failure { return address }
        return nil
    }
}

/// Sends requests many at a time and reports each one's result: what a run needs of HTTP.
/// `HTTPEngine` is the real one (libcurl multi); tests give the run a scripted one.
protocol Transport: AnyObject {
    /// Requests started and not yet returned by `poll`.
    var inFlight: Int { get }
    /// Starts sending `request`; its result comes from a later `poll`.
    func start(_ request: HTTPRequest) throws
    /// Waits up to `timeoutMS` for progress (not at all while nothing is in flight) and returns
    /// the requests that finished.
    func poll(timeoutMS: Int) throws -> [HTTPResult]
    /// What another thread calls to end a `poll` under way at once (a claim answered in the
    /// background, `BackgroundClaims`); `nil` when there is none to end (nothing in flight).
    /// Valid while the transport lives: the run keeps it until every claim is answered.
    func wakeHandle() -> (@Sendable () -> Void)?
}

extension Transport {
    /// A scripted transport's poll does not wait.
    func wakeHandle() -> (@Sendable () -> Void)? { nil }
}

/// A transport made only when a run has a request to send: an idle run never loads libcurl.
final class LazyTransport: Transport {
    private let make: () throws -> any Transport
    private var made: (any Transport)?

    init(_ make: @escaping () throws -> any Transport) { self.make = make }

    var inFlight: Int { made?.inFlight ?? 0 }

    func start(_ request: HTTPRequest) throws {
        if made == nil {
            // Room to load them first: the Swift runtime stops the program (SIGILL) when an
            // allocation fails, and making the transport allocates (measured, a debug build
            // under `ulimit -v` died there, in the metadata of a libcurl type, 2 MB short).
            try SystemCall.requireAddressSpace(Self.loading + Self.reserve, for: "cannot keep room for the run's requests")
            made = try make()
            // With the libraries the transport loaded (libcurl, libcrypto) in place, room for
            // the run's peak is proved before the first request: a host short of memory
            // (`ulimit -v`) stops the run here, 71, rather than part way through an attempt it
            // then cannot record (measured: a run died 2 to 3 MB past this point).
            try SystemCall.requireAddressSpace(Self.reserve, for: "cannot keep room for the run's requests")
        }
        try made!.start(request)
    }

    /// The room proved before the first request: about three times what a run of five
    /// deliveries was measured to grow by past it (connections, buffers, the recorder's
    /// batches); a run needs more with many large payloads in flight, so this narrows the
    /// window in which memory runs out after a request, and cannot close it.
    static let reserve = 8 << 20

    /// The address space making the transport takes (libcurl, libcrypto and what they load,
    /// their first allocations), with a margin: measured about 11 MB on Debian 12 (the lowest
    /// `ulimit -v` a release build's run delivered under moved from 49 to 53 MB with it).
    static let loading = 16 << 20

    func poll(timeoutMS: Int) throws -> [HTTPResult] { try made?.poll(timeoutMS: timeoutMS) ?? [] }

    func wakeHandle() -> (@Sendable () -> Void)? { made?.wakeHandle() }
}
