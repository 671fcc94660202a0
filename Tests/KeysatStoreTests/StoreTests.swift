import Glibc
import KeysatCommandLine
import KeysatCore
import KeysatStore
import XCTest

final class StoreTests: XCTestCase {
    private let directory = "/tmp/keysat-store-test-\(UInt64.random(in: 0...UInt64.max))"

    func testEventTypes() {
        for good in ["license.issued", "a", "A-Z_0:9.x", String(repeating: "x", count: 128)] {
            XCTAssertNoThrow(try EventType.validate(good), good)
        }
        for bad in ["", "has space", "slash/", "é", String(repeating: "x", count: 129), "*"] {
            XCTAssertThrowsError(try EventType.validate(bad), bad) { error in
                XCTAssertEqual((error as? KeysatError)?.exitCode, 65)
            }
        }
    }

    func testEnvelopeKeepsDataBytes() {
        let data = Array(" {\"n\": 1.10} \n".utf8)
        let envelope = Envelope.make(eventType: "x.y", timestamp: Timestamp(seconds: 0), data: data)
        XCTAssertEqual(
            String(decoding: envelope, as: UTF8.self),
            #"{"event_type":"x.y","timestamp":"1970-01-01T00:00:00.000000+00:00","data":{"n": 1.10}}"#)
    }

    func testEndpointURLs() {
        for good in ["http://a", "https://example.com:8443/p?q#f", "http://[fe80::1]:80/", "HTTP://X.Y"] {
            XCTAssertNoThrow(try EndpointURL.validate(good), good)
        }
        for bad in [
            "", "a", "ftp://x", "http://", "http://:80/", "http://h:0/", "http://u@h/", "http://h h/",
            "http://\u{7F}", "http://h:8x/",
        ] {
            XCTAssertThrowsError(try EndpointURL.validate(bad), bad)
        }
    }

    func testIdentifiersAreUUIDv4AndHexSecrets() {
        var generator = SystemRandomNumberGenerator()
        let ids = (0..<100).map { _ in Identifiers.uuid4(using: &generator) }
        XCTAssertEqual(Set(ids).count, 100)
        for id in ids {
            let chars = Array(id)
            XCTAssertEqual(chars.count, 36)
            XCTAssertEqual(chars[14], "4")
            XCTAssertTrue("89ab".contains(chars[19]))
        }
        XCTAssertEqual(Identifiers.secret(using: &generator).count, 64)
        XCTAssertEqual(Identifiers.lowercaseHex([0, 0xAB, 0xFF]), "00abff")
    }

    func testJSONTextEscapes() {
        XCTAssertEqual(JSONText.string("a\"b\\c\n\u{01}é"), #""a\"b\\c\n\u0001é""#)
        XCTAssertEqual(JSONText.object([("k", JSONText.number(nil))]), #"{"k":null}"#)
    }

    func testTableAlignsColumns() {
        XCTAssertEqual(Table.render([["A", "BB"], ["CCC", "D"]]), "A    BB\nCCC  D\n")
    }

    func testEnqueueWithAFixedClockAndGenerator() throws {
        let path = directory + ".db"
        defer { for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) } }
        let clock = FixedClock(Timestamp(seconds: 1_800_000_000))
        let store = try WebhookStore(path: path, create: true, clock: clock)
        var generator = SystemRandomNumberGenerator()
        let endpoint = try store.addEndpoint(
            url: "http://h/", secret: "0123456789abcdef", eventTypes: ["a"], description: "",
            using: &generator)
        let result = try store.enqueue(
            eventType: "a", data: Array("1".utf8), idempotencyKey: "k", using: &generator)
        XCTAssertEqual(result.deliveries.map(\.endpointID), [endpoint.id])
        XCTAssertFalse(result.replayed)
        // The key is remembered for 7 days, then forgotten.
        clock.current = clock.current.adding(seconds: 7 * 86_400 - 1)
        XCTAssertTrue(
            try store.enqueue(eventType: "a", data: Array("1".utf8), idempotencyKey: "k", using: &generator)
                .replayed)
        clock.current = clock.current.adding(seconds: 2)
        XCTAssertFalse(
            try store.enqueue(eventType: "a", data: Array("1".utf8), idempotencyKey: "k", using: &generator)
                .replayed)
        XCTAssertEqual(try store.schemaVersion(), 18, "every migration step applied, and no other")
    }
}
