import KeysatCore

#if canImport(Glibc)
    import Glibc
#endif

/// The socket `listen` accepts connections on (non-blocking: a client that gives up between
/// `poll` and `accept` must not stop the loop).
enum ListeningSocket {
    /// Binds and listens on `host:port` (port 0 picks a free one); returns the socket and its port.
    static func open(host: String, port: Int) throws -> (fd: Int32, port: Int) {
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
            first.pointee.ai_family,
            Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
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
        return (socketFD, Int(boundPort))
    }
}
