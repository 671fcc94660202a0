import KeysatCore
public import KeysatDelivery

#if canImport(Glibc)
    import Glibc
#endif

/// A small HTTP/1.1 receiver for trying keysat-deliver out: `keysat-webhooks listen`.
///
/// One thread, `poll(2)` over the listening socket and every connection, none of which can hold
/// the others up (issue 20): sockets are non-blocking and answers wait in a connection's own
/// buffer; bytes buffered across connections, and connections, are bounded; forwards to the
/// application run on a `ForwardingPool`'s threads. Requests need a `Content-Length` (curl
/// always sends one); heads two parsers could read differently are refused (`RequestParser`).
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
    private let pool: ForwardingPool?
    private var connections: [Int32: Connection] = [:]
    private var nextSerial = 0
    /// Requests with the application, by their connection's serial.
    private var pending: [Int: Pending] = [:]
    private var stopping = false

    private struct Pending {
        var fd: Int32
        var keepAlive: Bool
        var bytes: Int
        var then: (Forwarder.Result) throws -> Answer
    }

    /// Connections past this evict the longest idle one (3,000 slow connections took one each).
    static let maximumConnections = 256
    /// Bytes held across all connections (read, unwritten, or with the application): past it
    /// nothing more is read, and the connection holding the most unparsed bytes is closed
    /// (10 connections with 16 MiB unterminated heads took 168 MB when only each was bounded).
    static let maximumBufferedBytes = 32 << 20

    /// Binds and listens on `host:port` (port 0 picks a free one).
    /// - Parameter forwarders: one per forwarding thread (none: `serve`'s handler never forwards).
    public init(host: String, port: Int, respondStatus: Int, forwarders: [Forwarder] = []) throws {
        (fd, self.port) = try ListeningSocket.open(host: host, port: port)
        self.respondStatus = respondStatus
        pool = forwarders.isEmpty ? nil : try ForwardingPool(forwarders: forwarders)
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

    /// What to do with one POST.
    public enum Reply {
        case answer(Answer)
        /// Pass it on to the application (on a forwarding thread); `then`, called on the
        /// serving thread, turns the application's answer into the sender's.
        case forward(then: (Forwarder.Result) throws -> Answer)
    }

    /// Serves until `handle` says to stop (or forever).
    /// - Parameter handle: called for each POST, on this thread.
    public func serve(_ handle: (Request) throws -> Reply) throws {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while !stopping {
            var fds = pollSet()
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                throw KeysatError.system(.io, "poll failed", errno: errno)
            }
            let now = Listener.milliseconds()
            for entry in fds where entry.revents != 0 {
                if entry.fd == fd {
                    acceptAll(now)
                } else if let pool, entry.fd == pool.wakeFD {
                    try finishForwards(pool, handle, now)
                } else if let connection = connections[entry.fd] {
                    try serve(connection, events: entry.revents, &chunk, handle, now)
                }
                if stopping { break }
            }
            enforceBudget()
        }
        flushAll()
    }

    private func pollSet() -> [pollfd] {
        let room = buffered < Listener.maximumBufferedBytes
        var fds: [pollfd] = []
        fds.reserveCapacity(connections.count + 2)
        fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
        if let pool { fds.append(pollfd(fd: pool.wakeFD, events: Int16(POLLIN), revents: 0)) }
        for (client, connection) in connections {
            var events: Int32 = 0
            if room && connection.wantsInput { events |= Int32(POLLIN) }
            if !connection.output.isEmpty { events |= Int32(POLLOUT) }
            fds.append(pollfd(fd: client, events: Int16(events), revents: 0))
        }
        return fds
    }

    /// Bytes held for every connection: read, unwritten, and with the application.
    private var buffered: Int {
        connections.values.reduce(0) { $0 + $1.buffered } + pending.values.reduce(0) { $0 + $1.bytes }
    }

    private func serve(
        _ connection: Connection, events: Int16, _ chunk: inout [UInt8], _ handle: (Request) throws -> Reply,
        _ now: Int64
    ) throws {
        if events & Int16(POLLERR | POLLNVAL) != 0 {
            return drop(connection)
        }
        if events & Int16(POLLOUT) != 0, !connection.flush(now: now) { return drop(connection) }
        if events & Int16(POLLIN | POLLHUP) != 0 {
            if connection.wantsInput {
                if !connection.read(into: &chunk, now: now) {
                    // The client will send nothing more: answer what is complete, then close.
                    connection.closing = true
                }
            } else if events & Int16(POLLHUP) != 0 {
                // Gone both ways, and reported at every poll until closed: nothing to answer.
                return drop(connection)
            }
        }
        try answerRequests(connection, handle, now)
    }

    /// Answers the requests complete in `connection`'s input, up to one that goes to the
    /// application (the next waits for its answer: answers go in order).
    private func answerRequests(_ connection: Connection, _ handle: (Request) throws -> Reply, _ now: Int64)
        throws
    {
        parsing: while !connection.forwarding && !stopping && connection.output.count < Connection.outputLimit
        {
            switch connection.parser.parse(&connection.input) {
            case .incomplete:
                break parsing
            case .refused(let status):
                connection.input = []
                respond(connection, status: status, keepAlive: false)
                break parsing
            case .request(let request, let keepAlive):
                if request.method != "POST" {
                    respond(connection, status: 405, keepAlive: keepAlive)
                    if keepAlive { continue } else { break parsing }
                }
                switch try handle(request) {
                case .answer(let answer):
                    respond(connection, status: answer.status ?? respondStatus, keepAlive: keepAlive)
                    if !answer.goOn { stopping = true }
                    if !keepAlive { break parsing }
                case .forward(let then):
                    guard let pool else { preconditionFailure("a forward without --forward-to") }
                    pending[connection.serial] = Pending(
                        fd: connection.fd, keepAlive: keepAlive, bytes: request.body.count, then: then)
                    connection.forwarding = true
                    pool.submit(.init(id: connection.serial, headers: request.headers, body: request.body))
                }
            }
        }
        if !connection.flush(now: now)
            || (connection.closing && !connection.forwarding && connection.output.isEmpty)
        {
            drop(connection)
        }
    }

    private func finishForwards(_ pool: ForwardingPool, _ handle: (Request) throws -> Reply, _ now: Int64)
        throws
    {
        for (serial, result) in pool.finished() {
            guard let waiting = pending.removeValue(forKey: serial) else { continue }
            let answer = try waiting.then(result)
            if !answer.goOn { stopping = true }
            // The client may have gone (and its descriptor been reused): the serial says.
            guard let connection = connections[waiting.fd], connection.serial == serial else { continue }
            connection.forwarding = false
            respond(connection, status: answer.status ?? respondStatus, keepAlive: waiting.keepAlive)
            try answerRequests(connection, handle, now)
        }
    }

    private func respond(_ connection: Connection, status: Int, keepAlive: Bool) {
        let response =
            "HTTP/1.1 \(status) \(Listener.reason(status))\r\nContent-Length: 0\r\n"
            + (keepAlive ? "" : "Connection: close\r\n") + "\r\n"
        connection.output += Array(response.utf8)
        if !keepAlive { connection.closing = true }
    }

    private func acceptAll(_ now: Int64) {
        while true {
            let client = accept(fd, nil, nil)
            if client >= 0 {
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                _ = fcntl(client, F_SETFL, O_NONBLOCK)
            }
            if client < 0 {
                // Out of descriptors: the longest idle client makes room, or the next round retries.
                if errno == EMFILE || errno == ENFILE, let idlest = idlest() {
                    drop(idlest)
                    continue
                }
                return
            }
            nextSerial += 1
            connections[client] = Connection(fd: client, serial: nextSerial, now: now)
            if connections.count > Listener.maximumConnections {
                drop(idlest() ?? connections[client]!)
            }
        }
    }

    /// The connection idle longest, among those not waiting for the application.
    private func idlest() -> Connection? {
        connections.values.filter { !$0.forwarding }.min { $0.lastActive < $1.lastActive }
    }

    /// Over the bound, closes the connections holding the most unparsed bytes until under it.
    private func enforceBudget() {
        var total = buffered
        while total > Listener.maximumBufferedBytes {
            guard
                let largest = connections.values.filter({ !$0.forwarding }).max(by: {
                    $0.input.count < $1.input.count
                }),
                largest.buffered > 0
            else { return }
            total -= largest.buffered
            drop(largest)
        }
    }

    /// Before returning: what was answered is written, for at most two seconds.
    private func flushAll() {
        let deadline = Listener.milliseconds() + 2_000
        while Listener.milliseconds() < deadline {
            var fds = connections.values.filter { !$0.output.isEmpty }.map {
                pollfd(fd: $0.fd, events: Int16(POLLOUT), revents: 0)
            }
            if fds.isEmpty { return }
            _ = poll(&fds, nfds_t(fds.count), 100)
            let now = Listener.milliseconds()
            for entry in fds where entry.revents != 0 {
                guard let connection = connections[entry.fd] else { continue }
                if !connection.flush(now: now) || entry.revents & Int16(POLLERR | POLLHUP) != 0 {
                    drop(connection)
                }
            }
        }
    }

    private func drop(_ connection: Connection) {
        close(connection.fd)
        connections.removeValue(forKey: connection.fd)
    }

    static func milliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 410: "Gone"
        case 413: "Content Too Large"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        default: "Status"
        }
    }
}
