import KeysatCore
import KeysatStore
import XCTest

@testable import KeysatDelivery

/// The default refusals, block by block, with addresses written out by hand (not computed by the
/// code under test) where they matter most.
final class NetworkPolicyTests: XCTestCase {
    let policy = NetworkPolicy()

    func allows(_ text: String) -> Bool {
        guard let address = NetworkPolicy.parseAddress(text) else {
            XCTFail("not an address: \(text)")
            return false
        }
        return policy.allows(address)
    }

    func testEveryBlockIsRefusedFromItsFirstToItsLastAddress() {
        for (text, name) in NetworkPolicy.refusedTable {
            let network = NetworkPolicy.Network(text)!
            var first = network.bytes
            var last = network.bytes
            for bit in network.prefix..<128 {
                first[bit / 8] &= ~(0x80 >> UInt8(bit % 8))
                last[bit / 8] |= 0x80 >> UInt8(bit % 8)
            }
            XCTAssertFalse(policy.allows(first), "\(text) (\(name)): first address allowed")
            XCTAssertFalse(policy.allows(last), "\(text) (\(name)): last address allowed")
        }
    }

    func testKnownAddresses() {
        for refused in [
            "0.0.0.0", "10.1.2.3", "100.64.0.1", "127.0.0.1", "169.254.169.254", "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1", "192.88.99.1", "192.168.1.1", "198.19.0.1", "198.51.100.7", "203.0.113.9",
            "224.0.0.251",
            "239.255.255.250", "240.0.0.1", "255.255.255.255", "::", "::1", "::127.0.0.1", "::ffff:127.0.0.1",
            "::ffff:10.0.0.1", "::ffff:0:127.0.0.1", "::ffff:0:8.8.8.8", "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::808:808", "100::1", "100:0:0:1::1", "2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1", "2002:c000:204::1", "2002:0808:0808::1", "3fff::1", "3fff:fff:ffff::1", "5f00::1",
            "fc00::1", "fd12:3456::1", "fe80::1", "febf::1", "fec0::1", "ff02::1",
        ] {
            XCTAssertFalse(allows(refused), refused)
        }
        for allowed in [
            "1.1.1.1", "8.8.8.8", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0", "169.253.255.255", "172.15.255.255", "172.32.0.0", "192.0.1.0", "192.167.255.255",
            "198.17.255.255", "223.255.255.255", "64:ff9b::808:808", "::ffff:8.8.8.8", "2606:4700::1111",
            "2001:200::1", "2003::1", "4000::1", "fbff::1",
        ] {
            XCTAssertTrue(allows(allowed), allowed)
        }
    }

    func testAnAllowedNetworkOpensOnlyItself() throws {
        let opened = try NetworkPolicy.make(
            allow: ["2002:c000:204::/48"], allowPrivate: false, environment: .init([:]))
        XCTAssertTrue(opened.allows(NetworkPolicy.parseAddress("2002:c000:204::1")!))
        XCTAssertFalse(opened.allows(NetworkPolicy.parseAddress("2002:c000:205::1")!))
        let privateOnly = try NetworkPolicy.make(allow: [], allowPrivate: true, environment: .init([:]))
        XCTAssertTrue(privateOnly.allows(NetworkPolicy.parseAddress("10.0.0.1")!))
        XCTAssertFalse(privateOnly.allows(NetworkPolicy.parseAddress("169.254.169.254")!))
        XCTAssertFalse(privateOnly.allows(NetworkPolicy.parseAddress("2002::1")!))
    }
}
