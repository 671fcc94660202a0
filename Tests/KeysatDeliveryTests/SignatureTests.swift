import Foundation
import KeysatCore
import KeysatStore
import XCTest

@testable import KeysatDelivery

final class SignatureTests: XCTestCase {
    /// RFC 4231's test cases 1, 2, 3, 4, 6 and 7 (5 is a truncated output), and the empty
    /// key and message (the value every HMAC-SHA256 implementation gives).
    func testHMACSHA256MatchesRFC4231() throws {
        let cases: [(key: [UInt8], message: [UInt8], digest: String)] = [
            (
                Array(repeating: 0x0b, count: 20), Array("Hi There".utf8),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
            ),
            (
                Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
            ),
            (
                Array(repeating: 0xaa, count: 20), Array(repeating: 0xdd, count: 50),
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"
            ),
            (
                Array(1...25), Array(repeating: 0xcd, count: 50),
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"
            ),
            (
                Array(repeating: 0xaa, count: 131),
                Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
            ),
            (
                Array(repeating: 0xaa, count: 131),
                Array(
                    ("This is a test using a larger than block-size key and a larger than block-size data. "
                        + "The key needs to be hashed before being used by the HMAC algorithm.").utf8),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"
            ),
            ([], [], "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"),
        ]
        for (index, vector) in cases.enumerated() {
            XCTAssertEqual(
                Identifiers.lowercaseHex(Signature.hmacSHA256(key: vector.key, message: vector.message)),
                vector.digest, "case \(index)")
            // Signed with a prefix, as Standard Webhooks signs "id.timestamp." before the body.
            let split = vector.message.count / 3
            XCTAssertEqual(
                Identifiers.lowercaseHex(
                    try SigningKey(vector.key).sign(
                        Array(vector.message[split...]), prefix: Array(vector.message[..<split]))),
                vector.digest, "case \(index), prefixed")
        }
    }

    /// The value from an independent implementation (Python's hmac module):
    /// `hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()`.
    func testKeysatHeaderUsesTheSecretTextAsKey() {
        let secret = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
        let body = Array(#"{"event_type":"x","timestamp":"t","data":1}"#.utf8)
        let header = Signature.keysatHeaderValue(secret: secret, body: body)
        XCTAssertEqual(header, "sha256=d9aa696cc991d243b9b16ce87b831212b5aadd76c9dab27804dc585109719728")
        XCTAssertTrue(Signature.verifyKeysatHeader(header, secret: secret, body: body))
        XCTAssertTrue(
            Signature.verifyKeysatHeader(
                header.uppercased().replacingOccurrences(of: "SHA256=", with: "sha256="), secret: secret,
                body: body))
        XCTAssertFalse(Signature.verifyKeysatHeader(header, secret: secret, body: body + [0x20]))
        XCTAssertFalse(Signature.verifyKeysatHeader(header, secret: "other-secret-0000", body: body))
        XCTAssertFalse(Signature.verifyKeysatHeader("", secret: secret, body: body))
    }

    /// The example the Standard Webhooks specification and its reference libraries publish.
    func testStandardWebhooksPublishedExample() throws {
        let key = try XCTUnwrap(StandardWebhooks.key(from: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        let body = Array(#"{"test": 2432232314}"#.utf8)
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
        XCTAssertEqual(
            StandardWebhooks.signature(key: key, id: id, timestamp: 1_614_265_330, body: body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        let now = Timestamp(seconds: 1_614_265_330 + 60)
        XCTAssertNoThrow(
            try StandardWebhooks.verify(
                key: key, id: id, timestamp: "1614265330",
                signatures: "v1,bm9wZQ== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", body: body,
                now: now,
                toleranceSeconds: 300))
        XCTAssertThrowsError(
            try StandardWebhooks.verify(
                key: key, id: id, timestamp: "1614265330",
                signatures: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                body: body + [0x20], now: now, toleranceSeconds: 300))
        XCTAssertThrowsError(
            try StandardWebhooks.verify(
                key: key, id: id, timestamp: "1614265330",
                signatures: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                body: body, now: Timestamp(seconds: 1_614_265_330 + 301), toleranceSeconds: 300))
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
    private func headers(_ delivery: DueDelivery, secret: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in try! RequestHeaders.make(
            for: delivery, secret: secret, timestamp: Timestamp(seconds: 1_700_000_000))
        {
            let parts = line.split(separator: ":", maxSplits: 1).map(String.init)
            result[parts[0]] = parts[1].trimmingCharacters(in: .whitespaces)
        }
        return result
    }

    func testHeadersCarryEventDeliveryAndBothSchemes() {
        let secret = "secret-secret-secret"
        let delivery = DueDelivery(
            id: "d-1", endpointID: "e-1", eventType: "license.issued", payload: Array("{}".utf8),
            attemptCount: 0,
            nextAttemptAt: "", url: "http://h/", secret: secret, endpointActive: true)
        let h = headers(delivery, secret: secret)
        XCTAssertEqual(h["Content-Type"], "application/json")
        // Known answers from Python's hmac module (an independent implementation).
        XCTAssertEqual(
            h["X-Keysat-Signature"], "sha256=95395332bf40ca4580d2b462cd1d0bf800880f799d7b3a3826fab2b19c4e3c99"
        )
        XCTAssertEqual(h["X-Keysat-Event"], "license.issued")
        XCTAssertEqual(h["X-Keysat-Delivery"], "d-1")
        XCTAssertEqual(h["webhook-id"], "d-1")
        XCTAssertEqual(h["webhook-timestamp"], "1700000000")
        XCTAssertEqual(h["webhook-signature"], "v1,DYRrc5urjerYwmJE/6Ynwk+JEgVRCQtBdO42IPl2HIc=")
        XCTAssertNil(h["X-Keysat-Previous-Signature"])
    }

    func testDuringARotationBothSecretsSignNewFirst() {
        var delivery = DueDelivery(
            id: "d-1", endpointID: "e", eventType: "e", payload: Array("1".utf8), attemptCount: 0,
            nextAttemptAt: "", url: "http://h/", secret: "new-secret-0000000", endpointActive: true)
        delivery.previousSecret = "old-secret-0000000"
        let h = headers(delivery, secret: "new-secret-0000000")
        // Known answers from Python's hmac module (an independent implementation).
        XCTAssertEqual(
            h["X-Keysat-Signature"], "sha256=cd5da30e3a15c02d4477077ea38f803d25d0117f24ecc8c734847b324aa2d8cb"
        )
        XCTAssertEqual(
            h["X-Keysat-Previous-Signature"],
            "sha256=118ddd53b896ed22a0b8a4d8c86a657c44ae8638e9daf811cd2e81f94c426107")
        let signatures = h["webhook-signature"]?.split(separator: " ").map(String.init) ?? []
        XCTAssertEqual(signatures.count, 2)
        XCTAssertEqual(
            signatures,
            [
                "v1,yeYqnFNEzwB6Fsa4N6uwRQd9Ec/LZ9tzL9zkKfNnl70=",
                "v1,C34kC/0Us6PZ4f2U/QKckvD22MvbQli0TOXCwS3CpcQ=",
            ])
    }

    func testHeaderValuesCannotInjectLines() throws {
        let delivery = DueDelivery(
            id: "d-1\r\nX-Evil: 1", endpointID: "e", eventType: "a\nb", payload: [], attemptCount: 0,
            nextAttemptAt: "", url: "http://h/", secret: "s", endpointActive: true)
        for header in try RequestHeaders.make(for: delivery, secret: "s", timestamp: Timestamp(seconds: 0)) {
            XCTAssertFalse(header.contains("\r") || header.contains("\n"), header)
        }
    }

    func testHeaderSafeDropsControlCharactersAndKeepsOtherText() {
        XCTAssertEqual(RequestHeaders.headerSafe("license.issued"), "license.issued")
        XCTAssertEqual(RequestHeaders.headerSafe("a\r\nX-Injected: 1"), "aX-Injected: 1")
        XCTAssertEqual(RequestHeaders.headerSafe("tab\there\u{7F}\u{0}"), "tabhere")
        XCTAssertEqual(RequestHeaders.headerSafe("licença émise ✓"), "licença émise ✓")
        XCTAssertEqual(RequestHeaders.headerSafe(""), "")
    }
}

final class StandardWebhooksTests: XCTestCase {
    func testMatchesThePublishedExample() throws {
        // The example of the Standard Webhooks / Svix documentation.
        let key = try XCTUnwrap(StandardWebhooks.key(from: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        XCTAssertEqual(
            StandardWebhooks.signature(
                key: key, id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330,
                body: Array(#"{"test": 2432232314}"#.utf8)),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    func testWhsecFormRoundTripsTheSecretText() {
        let secret = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
        let whsec = StandardWebhooks.whsec(secret)
        XCTAssertTrue(whsec.hasPrefix("whsec_"))
        XCTAssertEqual(StandardWebhooks.key(from: whsec), Array(secret.utf8))
        XCTAssertEqual(StandardWebhooks.key(from: secret), Array(secret.utf8))
    }

    func testVerifyChecksSignatureAndTolerance() {
        let key = Array("k-0123456789abcdef".utf8)
        let body = Array("{}".utf8)
        let signature = StandardWebhooks.signature(key: key, id: "m", timestamp: 1000, body: body)
        let now = Timestamp(seconds: 1100)
        XCTAssertNoThrow(
            try StandardWebhooks.verify(
                key: key, id: "m", timestamp: "1000", signatures: "v1,bogus " + signature, body: body,
                now: now, toleranceSeconds: 300))
        XCTAssertThrowsError(
            try StandardWebhooks.verify(
                key: key, id: "m", timestamp: "1000", signatures: signature, body: body + [1], now: now,
                toleranceSeconds: 300))
        XCTAssertThrowsError(
            try StandardWebhooks.verify(
                key: key, id: "n", timestamp: "1000", signatures: signature, body: body, now: now,
                toleranceSeconds: 300))
        XCTAssertThrowsError(
            try StandardWebhooks.verify(
                key: key, id: "m", timestamp: "1000", signatures: signature, body: body,
                now: Timestamp(seconds: 1400), toleranceSeconds: 300))
        XCTAssertThrowsError(
            try StandardWebhooks.verify(
                key: key, id: "m", timestamp: "x", signatures: signature, body: body, now: now,
                toleranceSeconds: 300))
    }
}

final class Base64Tests: XCTestCase {
    func testRFC4648Vectors() {
        let vectors = [
            "": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==", "fooba": "Zm9vYmE=",
            "foobar": "Zm9vYmFy",
        ]
        for (plain, encoded) in vectors {
            XCTAssertEqual(Base64.encode(Array(plain.utf8)), encoded)
            XCTAssertEqual(Base64.decode(encoded), Array(plain.utf8))
        }
        XCTAssertNil(Base64.decode("Zm9v!"))
        XCTAssertNil(Base64.decode("Z"))
    }
}
