import Foundation
import XCTest

/// Every entry of the refused table, tried for real inside a network namespace (issue 12,
/// class 7). The addresses are written here by hand, one inside each block of the IANA
/// special-purpose registries, not computed by the code under test.
final class NetworkPolicyScenarioTests: XCTestCase {
    /// One address inside each refused block, keyed by the block as the table writes it.
    static let samples: [String: String] = [
        "0.0.0.0/8": "0.1.2.3", "10.0.0.0/8": "10.20.30.40", "100.64.0.0/10": "100.100.1.1",
        "127.0.0.0/8": "127.0.0.2", "169.254.0.0/16": "169.254.169.254", "172.16.0.0/12": "172.20.1.1",
        "192.0.0.0/24": "192.0.0.170", "192.0.2.0/24": "192.0.2.10", "192.88.99.0/24": "192.88.99.1",
        "192.168.0.0/16": "192.168.7.7", "198.18.0.0/15": "198.19.1.1", "198.51.100.0/24": "198.51.100.5",
        "203.0.113.0/24": "203.0.113.5", "224.0.0.0/4": "239.1.2.3", "240.0.0.0/4": "250.1.2.3",
        "::/128": "::", "::1/128": "::1", "::/96": "::10.1.2.3", "::ffff:0:0:0/96": "::ffff:0:8.8.4.4",
        "64:ff9b:1::/48": "64:ff9b:1::808:808", "100::/64": "100::5", "100:0:0:1::/64": "100:0:0:1::5",
        "2001::/23": "2001::53", "2001:db8::/32": "2001:db8::5", "2002::/16": "2002:808:808::1",
        "3fff::/20": "3fff:123::1", "5f00::/16": "5f00:1::1", "fc00::/7": "fd00:1::1", "fe80::/10": "fe80::5",
        "fec0::/10": "fec0::5", "ff00::/8": "ff05::5",
    ]
    /// Public addresses (put on loopback inside the namespace): delivered to by default.
    static let controls = ["8.8.8.8", "2606:4700::1111"]

    func testEveryRefusedBlockIsRefusedAndOnlyThePolicyRefusesIt() throws {
        try XCTSkipUnless(geteuid() == 0, "needs root for a network namespace")
        // Every block of the table has a sample here, and only those.
        let table = try String(
            contentsOf: Binaries.packageRoot.appendingPathComponent(
                "Sources/KeysatDelivery/NetworkPolicy.swift"),
            encoding: .utf8)
        let listed = Set(
            table.split(separator: "\n").compactMap { line -> String? in
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                guard trimmed.hasPrefix("(\""), let end = trimmed.dropFirst(2).firstIndex(of: "\"") else {
                    return nil
                }
                return String(trimmed.dropFirst(2)[..<end])
            })
        XCTAssertEqual(listed, Set(Self.samples.keys), "the refused table and the test's samples differ")

        let scratch = try Scratch()
        let script = Binaries.packageRoot.appendingPathComponent(
            "Tests/EndToEndTests/Fixtures/iana_scenario.sh"
        ).path
        let addresses = Self.samples.values.sorted()
        let result = try runTool(
            "/usr/bin/unshare",
            ["--mount", "--net", script, scratch.path, Binaries.directory.path] + Self.controls + ["--"]
                + addresses,
            environment: ["KEYSAT_ALLOW_NETWORKS": ""])
        XCTAssertEqual(result.status, 0, result.stderr + result.output)
        let assigned = Set(
            try String(contentsOfFile: scratch.file("assigned"), encoding: .utf8).split(separator: "\n").map(
                String.init))
        let byDefault = try rows(scratch.file("default.json"))
        for control in Self.controls {
            XCTAssertTrue(
                byDefault[control]?["delivered_at"] is String, "\(control): \(byDefault[control] ?? [:])")
        }
        for (block, address) in Self.samples {
            XCTAssertEqual(
                byDefault[address]?["last_error"] as? String,
                "request error: destination \(NetworkPolicyScenarioTests.shown(address)) is not allowed by the network policy",
                "\(block) (\(address))")
        }
        // Allowed, the ones the kernel put on loopback arrive: the policy alone refused them.
        let allowed = try rows(scratch.file("allowed.json"))
        // Multicast takes no TCP connection, and a link-local address needs a scope (%lo) that a
        // URL here does not carry: assigned or not, those two cannot be delivered to.
        let unconnectable: Set = ["239.1.2.3", "fe80::5"]
        let reachable = Self.samples.values.filter { assigned.contains($0) && !unconnectable.contains($0) }
        XCTAssertGreaterThanOrEqual(reachable.count, 20, "assigned: \(assigned.sorted())")
        for address in reachable {
            XCTAssertTrue(
                allowed[address]?["delivered_at"] is String, "\(address): \(allowed[address] ?? [:])")
        }
    }

    /// How the tool prints an address: IPv4-mapped ones as IPv4, the rest as inet_ntop does.
    static func shown(_ address: String) -> String {
        var v6 = in6_addr()
        guard address.contains(":"), inet_pton(AF_INET6, address, &v6) == 1 else { return address }
        var buffer = [CChar](repeating: 0, count: 64)
        inet_ntop(AF_INET6, &v6, &buffer, 64)
        return String(cString: buffer)
    }

    private func rows(_ path: String) throws -> [String: [String: Any]] {
        let list =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
            as? [[String: Any]] ?? []
        var result: [String: [String: Any]] = [:]
        for row in list { if let name = row["description"] as? String { result[name] = row } }
        return result
    }
}
