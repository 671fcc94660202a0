import KeysatDelivery
import KeysatStore
import XCTest

final class SignatureTests: XCTestCase {
    func testHMACSHA256MatchesRFC4231() {
        // RFC 4231, test case 2.
        let digest = Signature.hmacSHA256(
            key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        XCTAssertEqual(
            Identifiers.lowercaseHex(digest),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // An empty message and key still sign.
        XCTAssertEqual(
            Identifiers.lowercaseHex(Signature.hmacSHA256(key: [], message: [])),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }

    func testKeysatHeaderUsesTheSecretTextAsKey() {
        let secret = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
        let body = Array(#"{"event_type":"x","timestamp":"t","data":1}"#.utf8)
        let header = Signature.keysatHeaderValue(secret: secret, body: body)
        XCTAssertEqual(
            header,
            "sha256=" + Identifiers.lowercaseHex(Signature.hmacSHA256(key: Array(secret.utf8), message: body))
        )
        XCTAssertTrue(Signature.verifyKeysatHeader(header, secret: secret, body: body))
        XCTAssertTrue(
            Signature.verifyKeysatHeader(
                header.uppercased().replacingOccurrences(of: "SHA256=", with: "sha256="), secret: secret,
                body: body))
        XCTAssertFalse(Signature.verifyKeysatHeader(header, secret: secret, body: body + [0x20]))
        XCTAssertFalse(Signature.verifyKeysatHeader(header, secret: "other-secret-0000", body: body))
        XCTAssertFalse(Signature.verifyKeysatHeader("", secret: secret, body: body))
    }

    func testConstantTimeEqual() {
        XCTAssertTrue(Signature.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(Signature.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(Signature.constantTimeEqual([1, 2], [1, 2, 3]))
    }
}

final class BackoffTests: XCTestCase {
    func testLadderThenDeadLetter() {
        let now = Timestamp(seconds: 1000)
        let expected: [Int64] = [5, 10, 30, 60, 300, 900, 1800, 3600, 7200]
        for (index, delay) in expected.enumerated() {
            XCTAssertEqual(
                Backoff.result(afterFailedAttempt: index + 1, now: now),
                .retry(at: now.adding(seconds: delay)))
        }
        XCTAssertEqual(Backoff.result(afterFailedAttempt: 10, now: now), .dead)
        XCTAssertEqual(Backoff.result(afterFailedAttempt: 11, now: now), .dead)
        XCTAssertEqual(Backoff.maximumAttempts, 10)
    }
}

final class RequestHeadersTests: XCTestCase {
    func testHeadersCarryEventDeliveryAndSignature() {
        let delivery = DueDelivery(
            id: "d-1", endpointID: "e-1", eventType: "license.issued", payload: Array("{}".utf8),
            attemptCount: 0,
            nextAttemptAt: "", url: "http://h/", secret: "secret-secret-secret", endpointActive: true)
        let headers = RequestHeaders.make(for: delivery, secret: "secret-secret-secret")
        XCTAssertEqual(headers[0], "Content-Type: application/json")
        XCTAssertEqual(
            headers[1],
            "X-Keysat-Signature: "
                + Signature.keysatHeaderValue(secret: "secret-secret-secret", body: Array("{}".utf8)))
        XCTAssertEqual(headers[2], "X-Keysat-Event: license.issued")
        XCTAssertEqual(headers[3], "X-Keysat-Delivery: d-1")
    }

    func testHeaderValuesCannotInjectLines() {
        let delivery = DueDelivery(
            id: "d-1\r\nX-Evil: 1", endpointID: "e", eventType: "a\nb", payload: [], attemptCount: 0,
            nextAttemptAt: "", url: "http://h/", secret: "s", endpointActive: true)
        for header in RequestHeaders.make(for: delivery, secret: "s") {
            XCTAssertFalse(header.contains("\r") || header.contains("\n"), header)
        }
    }
}
