import KeysatCore
import KeysatDelivery

#if canImport(Glibc)
    import Glibc
#endif

/// A small HTTP/1.1 receiver for trying keysat-deliver out: `keysat-webhooks listen`.
///
/// One thread, `poll(2)` over the listening socket and every connection; keep-alive and
/// several connections at once. Requests need a `Content-Length` (curl always sends one).
public final class Listener {
    /// One request that arrived (a webhook, or anything else sent to the port).
    public struct Request {
        public var method: String
        public var path: String
        public var headers: [(String, String)]
        public var body: [UInt8]

        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    private let fd: Int32
    public let port: Int
    private let respondStatus: Int
    private var connections: [Int32: [UInt8]] = [:]
    private static let maximumRequestBytes = 16 << 20
    /// Stands for a request that cannot be read (answered 400, never handed on).
    private static let invalidMethod = "\u{0}invalid"

    /// Binds and listens on `host:port` (port 0 picks a free one).
    public init(host: String, port: Int, respondStatus: Int) throws {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw KeysatError(.usage, "cannot resolve --host \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        let socketFD = socket(
            first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socketFD >= 0 else {
            throw KeysatError.system(.unavailable, "cannot create a socket", errno: errno)
        }
        var one: Int32 = 1
        setsockopt(socketFD, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(socketFD, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0, listen(socketFD, 128) == 0
        else {
            let code = errno
            close(socketFD)
            throw KeysatError.system(
                code == EACCES ? .permission : .unavailable, "cannot listen on \(host):\(port)", errno: code)
        }
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(socketFD, $0, &length) }
        }
        let family = address.ss_family
        let boundPort = withUnsafePointer(to: &address) { pointer -> UInt16 in
            if family == sa_family_t(AF_INET6) {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    UInt16(bigEndian: $0.pointee.sin6_port)
                }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                UInt16(bigEndian: $0.pointee.sin_port)
            }
        }
        fd = socketFD
        self.port = Int(boundPort)
        self.respondStatus = respondStatus
    }

    deinit {
        for connection in connections.keys { close(connection) }
        close(fd)
    }

    /// What to answer a POST with, and whether to go on serving.
    public struct Answer {
        /// The status to answer with (`nil`: the listener's `respondStatus`).
        public var status: Int?
        public var goOn: Bool

        public init(status: Int? = nil, goOn: Bool) {
            self.status = status
            self.goOn = goOn
        }
    }

    /// Serves until `handle` says to stop (or forever).
    /// - Parameter handle: called for each POST; its answer gives the status and whether to go on.
    public func serve(_ handle: (Request) throws -> Answer) throws {
        while true {
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
            fds += connections.keys.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                throw KeysatError.system(.io, "poll failed", errno: errno)
            }
            for entry in fds where entry.revents != 0 {
                if entry.fd == fd {
                    let client = accept(fd, nil, nil)
                    if client >= 0 {
                        _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                        connections[client] = []
                    }
                    continue
                }
                if try !readAndAnswer(entry.fd, handle) { return }
            }
        }
    }

    /// Reads what a connection sent and answers every complete request in it.
    /// Returns `false` when `handle` asked to stop.
    private func readAndAnswer(_ client: Int32, _ handle: (Request) throws -> Answer) throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let count = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
        if count <= 0 {
            drop(client)
            return true
        }
        connections[client, default: []] += chunk[0..<count]
        while let buffer = connections[client], let (request, used, keepAlive) = parse(buffer) {
            connections[client] = Array(buffer[used...])
            let answer = request.method == "POST" ? try handle(request) : Answer(goOn: true)
            let goOn = answer.goOn
            let status =
                request.method == "POST"
                ? (answer.status ?? respondStatus) : request.method == Listener.invalidMethod ? 400 : 405
            let response =
                "HTTP/1.1 \(status) \(Listener.reason(status))\r\nContent-Length: 0\r\n"
                + (keepAlive ? "" : "Connection: close\r\n") + "\r\n"
            _ = Array(response.utf8).withUnsafeBytes {
                send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if !keepAlive { drop(client) }
            if !goOn { return false }
            if !keepAlive { break }
        }
        if let buffer = connections[client], buffer.count > Listener.maximumRequestBytes { drop(client) }
        return true
    }

    private func drop(_ client: Int32) {
        close(client)
        connections.removeValue(forKey: client)
    }

    /// One complete request at the start of `buffer`: the request, the bytes it used, keep-alive.
    private func parse(_ buffer: [UInt8]) -> (Request, Int, Bool)? {
        guard let end = headerEnd(buffer) else { return nil }
        let head = String(decoding: buffer[0..<end], as: UTF8.self)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let requestLine = lines.removeFirst().split(separator: " ").map(String.init)
        guard requestLine.count == 3 else { return nil }
        var headers: [(String, String)] = []
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingSpaces))
        }
        let delivery = Request(method: requestLine[0], path: requestLine[1], headers: headers, body: [])
        // The sender's number: only digits, and no more than a request may hold; anything else
        // is answered 400 and the connection closed (never an overflow or a negative range).
        let text = delivery.header("Content-Length") ?? "0"
        guard text.utf8.count <= 9, !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }),
            let length = Int(text), length <= Listener.maximumRequestBytes
        else {
            let invalid = Request(method: Listener.invalidMethod, path: "", headers: [], body: [])
            return (invalid, buffer.count, false)
        }
        let bodyStart = end + 4
        guard buffer.count >= bodyStart + length else { return nil }
        var complete = delivery
        complete.body = Array(buffer[bodyStart..<bodyStart + length])
        let connection = delivery.header("Connection")?.lowercased()
        let keepAlive = requestLine[2] == "HTTP/1.1" ? connection != "close" : connection == "keep-alive"
        return (complete, bodyStart + length, keepAlive)
    }

    private func headerEnd(_ buffer: [UInt8]) -> Int? {
        guard buffer.count >= 4 else { return nil }
        for index in 0...(buffer.count - 4)
        where buffer[index] == 13 && buffer[index + 1] == 10 && buffer[index + 2] == 13
            && buffer[index + 3] == 10
        {
            return index
        }
        return nil
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 410: "Gone"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 503: "Service Unavailable"
        default: "Status"
        }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String { String(self).trimmingSpaces }
}
