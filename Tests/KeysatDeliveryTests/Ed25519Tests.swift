import Foundation
import KeysatCore
import XCTest

@testable import KeysatDelivery

/// Ed25519 through the libcrypto shim, against published vectors.
final class Ed25519Tests: XCTestCase {
    private func hex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(UInt8(text[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }

    /// RFC 8032, section 7.1, TEST 1 (the empty message): public key and signature.
    func testRFC8032TestVector1() throws {
        let key = try Ed25519Key(seed: hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
        XCTAssertEqual(
            Identifiers.lowercaseHex(key.publicKey), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        let expected =
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        let signature = key.sign([])
        XCTAssertEqual(Identifiers.lowercaseHex(signature), expected)
        let verifier = try Ed25519Key(publicKey: key.publicKey)
        XCTAssertFalse(verifier.canSign)
        XCTAssertTrue(verifier.verify(signature, message: []))
        var flipped = signature
        flipped[10] ^= 1
        XCTAssertFalse(verifier.verify(flipped, message: []))
        XCTAssertFalse(verifier.verify(signature, message: [0]))
        XCTAssertFalse(verifier.verify(Array(signature.dropLast()), message: []))
    }

    /// RFC 8032, section 7.1, TEST 2 (one byte, 0x72), signed as a prefix and an empty body
    /// and as a body alone: the shim joins them into one message.
    func testRFC8032TestVector2WithAndWithoutPrefix() throws {
        let key = try Ed25519Key(seed: hex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"))
        XCTAssertEqual(
            Identifiers.lowercaseHex(key.publicKey), "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
        let expected =
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        XCTAssertEqual(Identifiers.lowercaseHex(key.sign([0x72])), expected)
        XCTAssertEqual(Identifiers.lowercaseHex(key.sign([], prefix: [0x72])), expected)
    }

    /// The Standard Webhooks reference library's v1a vector (standard-webhooks/standard-webhooks,
    /// libraries/go/webhook_asymmetric_test.go, TestAsymmetricWebhookSign): the seed
    /// "TESTSIGNINGKEYDONOTUSETHISFORANY" signing "{id}.{timestamp}.{body}".
    func testStandardWebhooksAsymmetricVector() throws {
        let seed = try XCTUnwrap(Base64.decode("VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="))
        let key = try Ed25519Key(seed: seed)
        let signature = key.sign(
            Array(#"{"test": 2432232314}"#.utf8), prefix: Array("msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.".utf8))
        XCTAssertEqual(
            "v1a," + Base64.encode(signature),
            "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag==")
    }

    /// whsk_ is seed and public key (as Svix writes it), whpk_ the public key; input files are
    /// refused when they are the other kind, the wrong length, or inconsistent.
    func testKeyTexts() throws {
        let seed = try XCTUnwrap(Base64.decode("VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="))
        let signing = try AsymmetricKey.signingKeyText(seed: seed)
        // Python cryptography: Ed25519PrivateKey.from_private_bytes(seed).public_key().
        XCTAssertEqual(AsymmetricKey.publicKeyText(ofSigningKey: signing), "whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g=")
        XCTAssertEqual(try AsymmetricKey.signingKey(Array((signing + "\n").utf8), source: "f"), signing)
        let publicText = try XCTUnwrap(AsymmetricKey.publicKeyText(ofSigningKey: signing))
        XCTAssertEqual(try AsymmetricKey.publicKey(Array(publicText.utf8), source: "f").count, 32)

        func refused(_ body: () throws -> Any, _ words: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try body(), file: file, line: line) { error in
                XCTAssertEqual((error as? KeysatError)?.exitCode, 65, file: file, line: line)
                XCTAssertTrue("\(error)".contains(words), "\(error)", file: file, line: line)
                XCTAssertFalse("\(error)".contains(String(signing.dropFirst(5).prefix(12))), file: file, line: line)
            }
        }
        refused({ try AsymmetricKey.publicKey(Array(signing.utf8), source: "f") }, "signing key (whsk_)")
        refused({ try AsymmetricKey.signingKey(Array(publicText.utf8), source: "f") }, "public key (whpk_)")
        refused({ try AsymmetricKey.publicKey(Array("whpk_AAAA".utf8), source: "f") }, "32 bytes")
        refused({ try AsymmetricKey.signingKey(Array("whsk_\(Base64.encode(seed))".utf8), source: "f") }, "64 bytes")
        refused({ try AsymmetricKey.signingKey(Array("whsec_\(Base64.encode(seed))".utf8), source: "f") }, "64 bytes")
        var mismatched = seed + seed
        mismatched[40] ^= 1
        refused({ try AsymmetricKey.signingKey(Array("whsk_\(Base64.encode(mismatched))".utf8), source: "f") }, "inconsistent")
    }
}
