public import KeysatCore
import KeysatStore

#if canImport(Glibc)
    import Glibc
#endif

/// Which addresses keysat-deliver may connect to.
///
/// By default it refuses loopback, private (RFC 1918, `fc00::/7`), link-local (cloud metadata
/// services live there), carrier-grade NAT, multicast, unspecified, documentation and reserved
/// addresses, IPv4-mapped and NAT64 forms included: whoever can add an endpoint must not be able
/// to reach the host's own network. The check is made on the address curl is about to connect
/// to (after resolution), so a DNS answer that changes cannot get around it.
public struct NetworkPolicy: Sendable {
    /// An IPv4 or IPv6 network, stored as 16 bytes (IPv4 as `::ffff:a.b.c.d`).
    public struct Network: Sendable, Equatable, CustomStringConvertible {
        var bytes: [UInt8]
        var prefix: Int
        public let description: String

        /// Parses `a.b.c.d/n`, `x:y::/n`, or an address alone (a single host).
        public init?(_ text: String) {
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2, let address = NetworkPolicy.parseAddress(String(parts[0])) else {
                return nil
            }
            let isV4 = !parts[0].contains(":")
            let maximum = isV4 ? 32 : 128
            var length = maximum
            if parts.count == 2 {
                guard let value = Int(parts[1]), (0...maximum).contains(value) else { return nil }
                length = value
            }
            bytes = address
            prefix = isV4 ? length + 96 : length
            description = text
        }

        func contains(_ address: [UInt8]) -> Bool {
            var remaining = prefix
            for index in 0..<16 where remaining > 0 {
                let bits = min(8, remaining)
                let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
                if address[index] & mask != bytes[index] & mask { return false }
                remaining -= bits
            }
            return true
        }
    }

    /// What is refused by default: every block of the IANA IPv4 and IPv6 Special-Purpose Address
    /// Registries that is not globally reachable (reviewed against both registries, 2026), and
    /// the forms that carry an IPv4 address inside an IPv6 one and would reach it (6to4, the
    /// local-use NAT64 prefix, SIIT's IPv4-translated form, IPv4-compatible; the well-known NAT64
    /// prefix and IPv4-mapped addresses are judged by the IPv4 address inside, see `forms`).
    /// Globally reachable special blocks (AS112, AMT, the PCP and TURN anycast addresses) are
    /// refused only where a larger block holds them.
    static let refusedTable: [(network: String, name: String)] = [
        ("0.0.0.0/8", "this network (RFC 791)"),
        ("10.0.0.0/8", "private use (RFC 1918)"),
        ("100.64.0.0/10", "shared address space, carrier-grade NAT (RFC 6598)"),
        ("127.0.0.0/8", "loopback (RFC 1122)"),
        ("169.254.0.0/16", "link local, cloud metadata services (RFC 3927)"),
        ("172.16.0.0/12", "private use (RFC 1918)"),
        ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
        ("192.0.2.0/24", "documentation TEST-NET-1 (RFC 5737)"),
        ("192.88.99.0/24", "deprecated 6to4 relay anycast (RFC 7526)"),
        ("192.168.0.0/16", "private use (RFC 1918)"),
        ("198.18.0.0/15", "benchmarking (RFC 2544)"),
        ("198.51.100.0/24", "documentation TEST-NET-2 (RFC 5737)"),
        ("203.0.113.0/24", "documentation TEST-NET-3 (RFC 5737)"),
        ("224.0.0.0/4", "multicast (RFC 5771)"),
        ("240.0.0.0/4", "reserved, and limited broadcast 255.255.255.255 (RFC 1112, RFC 919)"),
        ("::/128", "unspecified (RFC 4291)"),
        ("::1/128", "loopback (RFC 4291)"),
        ("::/96", "IPv4-compatible, deprecated (RFC 4291)"),
        ("::ffff:0:0:0/96", "IPv4-translated (RFC 2765)"),
        ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation (RFC 8215)"),
        ("100::/64", "discard-only (RFC 6666)"),
        ("100:0:0:1::/64", "dummy IPv6 prefix (RFC 9780)"),
        ("2001::/23", "IETF protocol assignments, Teredo included (RFC 2928, RFC 4380)"),
        ("2001:db8::/32", "documentation (RFC 3849)"),
        ("2002::/16", "6to4, an IPv4 address inside (RFC 3056)"),
        ("3fff::/20", "documentation (RFC 9637)"),
        ("5f00::/16", "segment routing SIDs (RFC 9602)"),
        ("fc00::/7", "unique local (RFC 4193)"),
        ("fe80::/10", "link-local unicast (RFC 4291)"),
        ("fec0::/10", "site-local, deprecated (RFC 3879)"),
        ("ff00::/8", "multicast (RFC 4291)"),
    ]

    static let refused: [Network] = refusedTable.map { Network($0.network)! }

    /// What `--allow-private-networks` opens: loopback, RFC 1918, unique local, carrier-grade NAT.
    /// Link-local (and with it the cloud metadata address) stays closed unless named.
    static let privateNetworks: [Network] = [
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "::1/128",
        "fc00::/7",
    ].map { Network($0)! }

    public var allowed: [Network]

    public init(allowed: [Network] = []) { self.allowed = allowed }

    /// The policy from `--allow-network` values, `--allow-private-networks` and
    /// `$KEYSAT_ALLOW_NETWORKS` (CIDRs separated by commas or spaces; the word `private` too).
    /// - Throws: `KeysatError` (usage) naming a value that is not a network.
    public static func make(allow: [String], allowPrivate: Bool, environment: Environment) throws
        -> NetworkPolicy
    {
        var policy = NetworkPolicy()
        var values = allow
        if let extra = environment["KEYSAT_ALLOW_NETWORKS"] {
            values += extra.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
        }
        if allowPrivate { values.append("private") }
        for value in values {
            if value == "private" {
                policy.allowed += privateNetworks
            } else if let network = Network(value) {
                policy.allowed.append(network)
            } else {
                throw KeysatError(
                    .usage,
                    "\(JSONText.string(value)) is not a network (write it as 10.0.0.0/8, 2001:db8::/32 or an address)"
                )
            }
        }
        return policy
    }

    /// Whether connecting to `address` (16 bytes; IPv4 mapped) is allowed.
    public func allows(_ address: [UInt8]) -> Bool {
        let candidates = NetworkPolicy.forms(of: address)
        if candidates.contains(where: { form in allowed.contains { $0.contains(form) } }) { return true }
        return !candidates.contains { form in NetworkPolicy.refused.contains { $0.contains(form) } }
    }

    /// The address itself and, for IPv4-mapped and NAT64 (`64:ff9b::/96`) forms, the IPv4
    /// address inside, which is what the connection reaches.
    static func forms(of address: [UInt8]) -> [[UInt8]] {
        var forms = [address]
        let nat64: [UInt8] = [0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0]
        if Array(address[0..<12]) == nat64 {
            forms.append([UInt8](repeating: 0, count: 10) + [0xff, 0xff] + Array(address[12..<16]))
        }
        return forms
    }

    /// An address as 16 bytes, IPv4 as `::ffff:a.b.c.d`; `nil` if it is not an address.
    public static func parseAddress(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return [UInt8](repeating: 0, count: 10) + [0xff, 0xff]
                + withUnsafeBytes(of: v4.s_addr) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// The text form of a 16-byte address (IPv4-mapped shown as IPv4).
    public static func format(_ address: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        if Array(address[0..<12]) == [UInt8](repeating: 0, count: 10) + [0xff, 0xff] {
            var v4 = in_addr()
            withUnsafeMutableBytes(of: &v4.s_addr) { $0.copyBytes(from: address[12..<16]) }
            inet_ntop(AF_INET, &v4, &buffer, socklen_t(buffer.count))
        } else {
            var v6 = in6_addr()
            withUnsafeMutableBytes(of: &v6) { $0.copyBytes(from: address) }
            inet_ntop(AF_INET6, &v6, &buffer, socklen_t(buffer.count))
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Why a delivery to `url` would be refused, judged on the addresses its host resolves to
    /// now (`--dry-run` and `endpoint add`): the first refused address, when none is allowed; or
    /// `--https-only` for plain http under that option. `nil` when it would be sent (or cannot be resolved
    /// now: the run will say why).
    public func refusal(of url: String, httpsOnly: Bool, timeoutSeconds: Double = 5) -> String? {
        if httpsOnly && url.lowercased().hasPrefix("http://") { return "--https-only" }
        guard let host = try? EndpointURL.validate(url) else { return nil }
        let addresses = NetworkPolicy.resolve(host: host, timeoutSeconds: timeoutSeconds)
        guard let first = addresses.first, !addresses.contains(where: allows) else { return nil }
        return NetworkPolicy.format(first)
    }

    /// The addresses `host` resolves to now, for the warning of `endpoint add` and `--dry-run`;
    /// `[]` when the lookup fails or takes longer than `timeoutSeconds` (`BoundedLookup`).
    public static func resolve(host: String, timeoutSeconds: Double = 5) -> [[UInt8]] {
        if let literal = parseAddress(host) { return [literal] }
        return BoundedLookup.resolve(host, timeoutSeconds: timeoutSeconds)
    }

    /// getaddrinfo(3), unbounded: only `BoundedLookup` calls it.
    static func resolveNow(host: String) -> [[UInt8]] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0 else { return [] }
        defer { freeaddrinfo(list) }
        var result: [[UInt8]] = []
        var entry = list
        while let current = entry {
            if let address = socketAddressBytes(current.pointee.ai_addr), !result.contains(address) {
                result.append(address)
            }
            entry = current.pointee.ai_next
        }
        return result
    }

    /// The 16-byte address in a `sockaddr` (IPv4 mapped), or `nil` for other families.
    static func socketAddressBytes(_ address: UnsafePointer<sockaddr>?) -> [UInt8]? {
        guard let address else { return nil }
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                [UInt8](repeating: 0, count: 10) + [0xff, 0xff]
                    + withUnsafeBytes(of: v4.pointee.sin_addr.s_addr) { Array($0) }
            }
        case AF_INET6:
            return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                var copy = v6.pointee.sin6_addr
                return withUnsafeBytes(of: &copy) { Array($0) }
            }
        default:
            return nil
        }
    }
}

extension Logger {
    /// The warning for a destination the network policy refused: once per endpoint and run, from
    /// a run and from --dry-run alike, naming what would allow it.
    /// - Parameter address: the refused address, or `--https-only` for plain http under it.
    func refusedDestination(endpointID: String, url: String?, address: String) {
        let allow =
            address == "--https-only"
            ? "an https URL" : "--allow-network \(address) (or KEYSAT_ALLOW_NETWORKS=\(address))"
        log(
            .warn, "destination refused by the network policy",
            [
                "endpoint_id": endpointID, "host": url.flatMap { try? EndpointURL.validate($0) } ?? "-",
                "address": address, "allow_with": allow,
            ])
    }
}
