internal import CCurl
internal import CCurlShim
import KeysatCore
import KeysatStore

#if canImport(Glibc)
    import Glibc
#endif

/// Sends many POSTs at once over one libcurl multi handle, driven from the calling thread.
///
/// Connections are cached per host by the multi handle and easy handles are reused, so a run
/// against a few receivers opens few connections. Redirects are never followed.
final class HTTPEngine: Transport {
    struct Settings {
        var timeoutMS = 10_000
        var connectTimeoutMS = 5_000
        var maximumResponseBytes = 65_536
        /// `nil`: none of ours (the forwarder passes on the sender's).
        var userAgent: String? = "keysat-webhooks/\(KeysatVersion.string)"
        var policy = NetworkPolicy()
        /// A CA bundle to trust instead of the system's.
        var caFile: String?
        var httpsOnly = false
    }

    /// State of one transfer, reached from curl's callbacks through an unretained pointer.
    final class Transfer {
        let easy: EasyHandle
        var tag = 0
        /// The request body's size: curl holds a copy of it until the handle sends another.
        var requestBytes = 0
        var body: [UInt8] = []
        var limit = 0
        var truncated = false
        var statusLine: Int?
        var retryAfter: String?
        var started = Timestamp(microseconds: 0)
        /// `started` on the monotonic clock: the attempt's duration never depends on a step of
        /// the wall clock.
        var startedElapsed: Int64 = 0
        /// The errno of a socket this host could not make for want of descriptors or memory.
        var exhausted: Int32?
        let policy: NetworkPolicy
        /// An address the network policy refused for this transfer.
        var refused: String?

        init(easy: EasyHandle, policy: NetworkPolicy) {
            self.easy = easy
            self.policy = policy
        }
    }

    private let multi: MultiHandle
    private let settings: Settings
    /// Headers every request ends with. The user agent goes in the list rather than through
    /// CURLOPT_USERAGENT, which libcurl 7.88 formats into a string of its own at every request
    /// before formatting that into the request, byte by byte both times (the same bytes are sent).
    private let closingHeaders: [String]
    private let clock: any TimeSource
    private var active: [UnsafeMutableRawPointer: Transfer] = [:]
    private var idle: [Transfer] = []

    var inFlight: Int { active.count }

    init(settings: Settings, maximumConnections: Int, clock: any TimeSource) throws {
        try KeysatError.load("libcurl", package: "libcurl4") { keysat_curl_load($0, $1) }
        try Signature.load()
        let initialized = keysat_curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        guard initialized == CURLE_OK else {
            throw CurlFailure(
                call: "curl_global_init", message: String(cString: keysat_curl_easy_strerror(initialized)),
                code: Int32(initialized.rawValue)
            ).keysatError
        }
        multi = try MultiHandle()
        self.settings = settings
        closingHeaders = (settings.userAgent.map { ["User-Agent: " + RequestHeaders.headerSafe($0)] } ?? []) + ["Expect:"]
        self.clock = clock
        try multi.set(CURLMOPT_MAXCONNECTS, max(maximumConnections, 1))
    }

    /// A transfer whose easy handle carries every option that is the same for all requests:
    /// set once, not reset and set again for each request.
    private func makeTransfer() throws -> Transfer {
        let transfer = Transfer(easy: try EasyHandle(), policy: settings.policy)
        let easy = transfer.easy
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        do {
            try easy.set(CURLOPT_PROTOCOLS_STR, settings.httpsOnly ? "https" : "http,https")
            try easy.set(CURLOPT_FOLLOWLOCATION, 0)
            // Peers are always verified; no option turns this off.
            try easy.set(CURLOPT_SSL_VERIFYPEER, 1)
            try easy.set(CURLOPT_SSL_VERIFYHOST, 2)
            if let caFile = settings.caFile { try easy.set(CURLOPT_CAINFO, caFile) }
            // Environment proxies are ignored: the network policy judges the receiver's own address.
            try easy.set(CURLOPT_PROXY, "")
            try easy.setOpenSocket(openSocket)
            try easy.set(CURLOPT_OPENSOCKETDATA, pointer: context)
            try easy.set(CURLOPT_NOSIGNAL, 1)
            // A lookup that outlives the attempt's timeout is abandoned, not waited for: without
            // this, removing the handle joins the resolver thread, which a resolver that never
            // answers holds for the C library's whole retry schedule (2 x 5 s), past
            // --max-runtime and SIGTERM. (libcurl 7.87+; the thread is left to end by itself.)
            try easy.set(CURLOPT_QUICK_EXIT, 1)
            try easy.set(CURLOPT_TIMEOUT_MS, settings.timeoutMS)
            try easy.set(CURLOPT_CONNECTTIMEOUT_MS, settings.connectTimeoutMS)
            try easy.set(CURLOPT_ERRORBUFFER, pointer: UnsafeMutableRawPointer(easy.errorBuffer))
            try easy.set(CURLOPT_WRITEFUNCTION, callback: writeBody)
            try easy.set(CURLOPT_WRITEDATA, pointer: context)
            try easy.set(CURLOPT_HEADERFUNCTION, callback: readHeader)
            try easy.set(CURLOPT_HEADERDATA, pointer: context)
            try easy.set(CURLOPT_POST, 1)
        } catch let failure as CurlFailure {
            throw failure.keysatError
        }
        return transfer
    }

    /// Starts sending `request`.
    func start(_ request: HTTPRequest) throws {
        let transfer = try idle.popLast() ?? makeTransfer()
        let easy = transfer.easy
        easy.errorBuffer[0] = 0
        transfer.tag = request.tag
        transfer.requestBytes = request.body.count
        transfer.body.removeAll(keepingCapacity: true)
        transfer.limit = settings.maximumResponseBytes
        transfer.truncated = false
        transfer.statusLine = nil
        transfer.retryAfter = nil
        transfer.refused = nil
        transfer.exhausted = nil
        transfer.started = clock.now()
        transfer.startedElapsed = clock.elapsed()
        do {
            try easy.set(CURLOPT_URL, request.url)
            // Per request: handles are reused across endpoints (curl does not reuse a connection
            // made with another certificate).
            if let certificate = request.clientCertificate {
                try easy.set(CURLOPT_SSLCERT, certificate.certificate)
                try easy.set(CURLOPT_SSLKEY, certificate.key)
            } else {
                try easy.set(CURLOPT_SSLCERT, pointer: nil)
                try easy.set(CURLOPT_SSLKEY, pointer: nil)
            }
            try easy.setBody(request.body)
            try easy.setHeaders(request.headers + closingHeaders)
            try multi.add(easy)
        } catch let failure as CurlFailure {
            idle.append(transfer)
            throw failure.keysatError
        }
        active[easy.raw] = transfer
    }

    /// Waits up to `timeoutMS` for activity (at once when curl has work pending, as for new
    /// requests), lets the transfers progress once, and returns the ones that finished.
    func wakeHandle() -> (@Sendable () -> Void)? { multi.wakeHandle }

    func poll(timeoutMS: Int) throws -> [HTTPResult] {
        do {
            if !active.isEmpty { try multi.poll(timeoutMS: timeoutMS) }
            _ = try multi.perform()
            return try collect()
        } catch let failure as CurlFailure {
            throw failure.keysatError
        }
    }

    private func collect() throws -> [HTTPResult] {
        var results: [HTTPResult] = []
        for (raw, code) in multi.finished() {
            guard let transfer = active.removeValue(forKey: raw) else { continue }
            try multi.remove(transfer.easy)
            let finished = Timestamp(
                microseconds: transfer.started.microseconds + max(0, clock.elapsed() - transfer.startedElapsed))
            var status: Int?
            var failure: HTTPResult.Failure?
            if code == CURLE_OK {
                status = transfer.easy.info(CURLINFO_RESPONSE_CODE) ?? transfer.statusLine
            } else if let line = transfer.statusLine, line >= 200 {
                // The receiver answered; the body broke off or was longer than we read.
                status = line
            } else if let refused = transfer.refused {
                failure = .refused(address: refused)
            } else if let code = transfer.exhausted {
                failure = .exhausted(errno: code)
            } else if code == CURLE_OUT_OF_MEMORY {
                failure = .exhausted(errno: ENOMEM)
            } else if code == CURLE_UNSUPPORTED_PROTOCOL && settings.httpsOnly {
                failure = .plainHTTPRefused
            } else {
                failure = .transport(code: Int(code.rawValue), message: transfer.easy.errorMessage(code))
            }
            results.append(
                HTTPResult(
                    tag: transfer.tag, status: status, failure: failure, requestBytes: transfer.requestBytes,
                    retryAfter: transfer.retryAfter,
                    body: transfer.body, started: transfer.started, finished: finished))
            if transfer.requestBytes > 65_536 {
                // An idle handle would keep curl's copy of a large body until it is used again.
                try? transfer.easy.setBody([])
            }
            idle.append(transfer)
        }
        return results
    }
}

/// Keeps the first bytes of the body; stops the transfer once more than the limit arrives.
private let writeBody: keysat_curl_data_callback = { data, size, count, context in
    let transfer = Unmanaged<HTTPEngine.Transfer>.fromOpaque(context!).takeUnretainedValue()
    let length = size * count
    let room = transfer.limit - transfer.body.count
    if room > 0, let data {
        let take = min(room, length)
        data.withMemoryRebound(to: UInt8.self, capacity: take) {
            transfer.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: take))
        }
    }
    if length > room {
        transfer.truncated = true
        return 0  // tells curl to stop: at most `limit` bytes of a response are read
    }
    return length
}

/// Notes the status of each status line (`HTTP/1.1 204 No Content`; the last one is final)
/// and the `Retry-After` header.
private let readHeader: keysat_curl_data_callback = { data, size, count, context in
    let transfer = Unmanaged<HTTPEngine.Transfer>.fromOpaque(context!).takeUnretainedValue()
    let length = size * count
    guard let data, length >= 12 else { return length }
    data.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
        let line = UnsafeBufferPointer(start: bytes, count: min(length, 200))
        let name = Array("retry-after:".utf8)
        if line.count > name.count, zip(line, name).allSatisfy({ $0 | 0x20 == $1 | 0x20 }) {
            transfer.retryAfter = String(decoding: line[name.count...], as: UTF8.self).trimmingSpaces
            return
        }
        guard bytes[0] == UInt8(ascii: "H"), bytes[1] == UInt8(ascii: "T"), bytes[2] == UInt8(ascii: "T"),
            bytes[3] == UInt8(ascii: "P"), bytes[4] == UInt8(ascii: "/")
        else { return }
        var index = 5
        while index < length && bytes[index] != UInt8(ascii: " ") { index += 1 }
        var code = 0
        for offset in 1...3 where index + offset < length {
            let digit = bytes[index + offset]
            guard digit >= 48, digit <= 57 else { return }
            code = code * 10 + Int(digit - 48)
        }
        transfer.statusLine = code
    }
    return length
}

/// Opens the socket for an address curl is about to connect to, unless the network policy
/// refuses that address: the check is on the very address used, after DNS.
private let openSocket: keysat_curl_opensocket_callback = { context, _, address in
    let transfer = Unmanaged<HTTPEngine.Transfer>.fromOpaque(context!).takeUnretainedValue()
    guard let address else { return keysat_curl_socket_bad }
    if let bytes = NetworkPolicy.socketAddressBytes(keysat_curl_sockaddr_address(address)),
        !transfer.policy.allows(bytes)
    {
        transfer.refused = NetworkPolicy.format(bytes)
        return keysat_curl_socket_bad
    }
    let made = socket(address.pointee.family, address.pointee.socktype, address.pointee.protocol)
    if made < 0 && KeysatError.isExhaustion(errno) || made < 0 && errno == ENOBUFS {
        transfer.exhausted = errno  // this host's shortage, not the receiver's failure
    }
    return made
}
