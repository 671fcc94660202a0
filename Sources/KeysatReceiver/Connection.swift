#if canImport(Glibc)
    import Glibc
#endif

/// One client of `listen`: what it sent and was not yet read as a request, what it is to be
/// sent and was not yet written, and whether its current request is with the application.
final class Connection {
    let fd: Int32
    /// Never reused, unlike descriptors: an application's late answer finds no other client.
    let serial: Int
    var input: [UInt8] = []
    var output: [UInt8] = []
    var parser = RequestParser()
    /// A request of this connection is with the application: the next waits (answers go in order).
    var forwarding = false
    /// Close once `output` is written (the client asked, or its stream cannot be trusted).
    var closing = false
    /// Monotonic milliseconds of the last byte read or written: the longest idle goes first.
    var lastActive: Int64

    /// Past this much unwritten output, nothing more is read from the client: one that sends
    /// requests without reading the answers holds only its own connection up.
    static let outputLimit = 65_536

    init(fd: Int32, serial: Int, now: Int64) {
        self.fd = fd
        self.serial = serial
        lastActive = now
    }

    var buffered: Int { input.count + output.count }

    var wantsInput: Bool { !forwarding && !closing && output.count < Connection.outputLimit }

    /// Writes what it can without blocking. Returns `false` when the connection is finished
    /// (an error, or all written and `closing`).
    func flush(now: Int64) -> Bool {
        while !output.isEmpty {
            let sent = output.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 {
                if errno == EINTR { continue }
                return errno == EAGAIN || errno == EWOULDBLOCK
            }
            output.removeFirst(sent)
            lastActive = now
        }
        return !closing
    }

    /// Reads what arrived into `input` through `chunk`. Returns `false` at the end of the stream
    /// or on an error.
    func read(into chunk: inout [UInt8], now: Int64) -> Bool {
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count < 0 { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR }
        if count == 0 { return false }
        // The body's length is known once the head is read: room for exactly that, so that a
        // 16 MiB body does not leave a 32 MiB array behind.
        if let expected = parser.expectedBytes, input.capacity < expected { input.reserveCapacity(expected) }
        input += chunk[0..<count]
        lastActive = now
        return true
    }
}
