import Foundation
import XCTest

/// Standard Webhooks v1a (Ed25519) signatures, per endpoint (issue 22): checked by an
/// independent implementation (pyca/cryptography), through real deliveries over loopback, on
/// both backends.
final class AsymmetricSignatureTests: XCTestCase {
    /// The v1a verdicts of pyca/cryptography with the public key, one per v1a signature, in order.
    private func independent(_ whpk: String, _ request: Receiver.Request, body: Data? = nil, scratch: Scratch)
        throws -> [Bool]
    {
        let bodyFile = scratch.file("body-\(UUID().uuidString)")
        try (body ?? request.body).write(to: URL(fileURLWithPath: bodyFile))
        let wanted = ["webhook-id", "webhook-timestamp", "webhook-signature"]
        let json = String(
            decoding: try JSONSerialization.data(withJSONObject: request.headers.filter { wanted.contains($0.key) }),
            as: UTF8.self)
        let script = Binaries.packageRoot.appendingPathComponent("Tests/EndToEndTests/Fixtures/verify_ed25519.py").path
        let result = try runTool("/usr/bin/env", ["python3", script, whpk, json, bodyFile])
        XCTAssertEqual(result.status, 0, result.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: result.stdout) as? [Bool])
    }

    /// `keysat-webhooks verify --public-key-file` on a received request.
    private func verify(_ whpk: String, _ request: Receiver.Request, body: Data? = nil, scratch: Scratch) throws
        -> ProcessResult
    {
        let keyFile = try scratch.write("pk-\(UUID().uuidString)", whpk + "\n")
        let bodyFile = scratch.file("verify-body-\(UUID().uuidString)")
        try (body ?? request.body).write(to: URL(fileURLWithPath: bodyFile))
        let headers = request.headers.filter { $0.key.hasPrefix("webhook-") }.sorted { $0.key < $1.key }.flatMap {
            ["--header", "\($0.key): \($0.value)"]
        }
        return try runTool("keysat-webhooks", ["verify", "--public-key-file", keyFile] + headers + [bodyFile])
    }

    private func json(_ result: ProcessResult) throws -> [String: Any] {
        XCTAssertEqual(result.status, 0, result.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
    }

    private func addEndpoint(_ db: TestDatabase, _ receiver: Receiver, path: String, _ extra: [String] = [])
        throws -> [String: Any]
    {
        let object = try json(
            runTool(
                "keysat-webhooks",
                ["endpoint", "add", receiver.url(path), "--signature", "ed25519", "--json", "--db", db.path] + extra))
        try receiver.expectSecret(try XCTUnwrap(object["secret"] as? String), forPath: path)
        return object
    }

    func testV1aVerifiedIndependentlyAndRejectedAfterOneByteOfTheBodyChanges() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try addEndpoint(db, receiver, path: "/status/204")
        let id = try XCTUnwrap(endpoint["id"] as? String)
        let whpk = try XCTUnwrap(endpoint["public_key"] as? String)
        let whsk = try XCTUnwrap(endpoint["signing_key"] as? String)
        XCTAssertEqual(endpoint["signature"] as? String, "ed25519")
        XCTAssertTrue(whpk.hasPrefix("whpk_") && whsk.hasPrefix("whsk_"))
        XCTAssertEqual(Data(base64Encoded: String(whpk.dropFirst(5)))?.count, 32)
        let keyBytes = try XCTUnwrap(Data(base64Encoded: String(whsk.dropFirst(5))))
        XCTAssertEqual(keyBytes.count, 64)
        XCTAssertEqual(keyBytes.suffix(32).base64EncodedString(), String(whpk.dropFirst(5)), "seed, then public key")

        _ = try db.enqueue(["license.issued", #"{"n": 1.10}"#])
        XCTAssertEqual(try db.deliver().status, 0)
        let request = try XCTUnwrap(receiver.requests().first)
        let signatures = try XCTUnwrap(request.headers["webhook-signature"]).split(separator: " ")
        XCTAssertEqual(signatures.map { $0.split(separator: ",")[0] }, ["v1a", "v1"], "v1a first, then v1")
        XCTAssertEqual(try independent(whpk, request, scratch: scratch), [true])
        XCTAssertEqual(request.signatureOK, true, "X-Keysat-Signature stays HMAC, on by default")
        XCTAssertEqual(try verify(whpk, request, scratch: scratch).status, 0)
        // A receiver holding the secret still verifies v1 with the standard's libraries, which
        // skip the v1a signature before it.
        let bodyFile = scratch.file("standard-body")
        try request.body.write(to: URL(fileURLWithPath: bodyFile))
        let picked = request.headers.filter { $0.key.hasPrefix("webhook-") }
        let libraries = try runTool(
            "/usr/bin/env",
            [
                "python3",
                Binaries.packageRoot.appendingPathComponent("Tests/EndToEndTests/Fixtures/verify_standard.py").path,
                try XCTUnwrap(endpoint["secret_whsec"] as? String),
                String(decoding: try JSONSerialization.data(withJSONObject: picked), as: UTF8.self), bodyFile,
            ])
        XCTAssertEqual(
            try JSONSerialization.jsonObject(with: libraries.stdout) as? [String: String],
            ["standardwebhooks": "ok", "svix": "ok"], libraries.stderr)

        // One byte of the body changed: rejected by the independent check and by verify.
        var tampered = request.body
        tampered[tampered.startIndex + 2] ^= 0x01
        XCTAssertEqual(try independent(whpk, request, body: tampered, scratch: scratch), [false])
        let refused = try verify(whpk, request, body: tampered, scratch: scratch)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("bad signature"), refused.stderr)
        // Another endpoint's public key does not verify it either.
        let other = try addEndpoint(db, receiver, path: "/other")
        XCTAssertEqual(try verify(try XCTUnwrap(other["public_key"] as? String), request, scratch: scratch).status, 1)

        // endpoint show prints the public key, the signing key only with --show-secret.
        let shown = try runTool("keysat-webhooks", ["endpoint", "show", id, "--db", db.path])
        XCTAssertEqual(shown.status, 0, shown.stderr)
        XCTAssertTrue(shown.output.contains(whpk))
        XCTAssertFalse(shown.output.contains(whsk))
        let shownJSON = try json(runTool("keysat-webhooks", ["endpoint", "show", id, "--json", "--db", db.path]))
        XCTAssertEqual(shownJSON["public_key"] as? String, whpk)
        XCTAssertNil(shownJSON["signing_key"])
        let revealed = try runTool("keysat-webhooks", ["endpoint", "show", id, "--show-secret", "--db", db.path])
        XCTAssertTrue(revealed.output.contains(whsk))
    }

    func testRotationWithGraceSignsWithBothKeysNewFirstThenErasesTheOld() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try addEndpoint(db, receiver, path: "/status/204")
        let id = try XCTUnwrap(endpoint["id"] as? String)
        let oldKey = try XCTUnwrap(endpoint["public_key"] as? String)
        let rotated = try json(
            runTool("keysat-webhooks", ["endpoint", "rotate-secret", id, "--grace", "1h", "--json", "--db", db.path]))
        let newKey = try XCTUnwrap(rotated["public_key"] as? String)
        XCTAssertNotEqual(newKey, oldKey)
        try receiver.expectSecret(try XCTUnwrap(rotated["secret"] as? String), forPath: "/status/204")

        _ = try db.enqueue(["e", "1"])
        XCTAssertEqual(try db.deliver().status, 0)
        let during = try XCTUnwrap(receiver.requests().last)
        let versions = try XCTUnwrap(during.headers["webhook-signature"]).split(separator: " ").map {
            $0.split(separator: ",")[0]
        }
        XCTAssertEqual(versions, ["v1a", "v1a", "v1", "v1"])
        XCTAssertEqual(try independent(newKey, during, scratch: scratch), [true, false], "the new key's first")
        XCTAssertEqual(try independent(oldKey, during, scratch: scratch), [false, true])
        XCTAssertEqual(try verify(oldKey, during, scratch: scratch).status, 0)
        XCTAssertEqual(try verify(newKey, during, scratch: scratch).status, 0)

        // The grace ends: the next run erases the old key with the old secret.
        try SQL.execute(
            db.path, "UPDATE webhook_endpoints SET previous_secret_expires_at = '2000-01-01T00:00:00.000000+00:00'")
        _ = try db.enqueue(["e", "2"])
        XCTAssertEqual(try db.deliver().status, 0)
        let after = try XCTUnwrap(receiver.requests().last)
        XCTAssertEqual(try independent(newKey, after, scratch: scratch), [true])
        XCTAssertEqual(try verify(oldKey, after, scratch: scratch).status, 1)
        XCTAssertEqual(
            try SQL.value(db.path, "SELECT count(*) FROM webhook_endpoints WHERE previous_signing_key IS NOT NULL"), "0")
    }

    func testNoKeysatSignatureOmitsTheHeaderAndListenChecksWithThePublicKey() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try addEndpoint(db, receiver, path: "/status/204", ["--no-keysat-signature"])
        let id = try XCTUnwrap(endpoint["id"] as? String)
        let whpk = try XCTUnwrap(endpoint["public_key"] as? String)
        XCTAssertEqual(endpoint["keysat_signature"] as? Bool, false)
        _ = try db.enqueue(["e", "1"])
        XCTAssertEqual(try db.deliver().status, 0)
        let without = try XCTUnwrap(receiver.requests().last)
        XCTAssertNil(without.headers["x-keysat-signature"])
        XCTAssertNil(without.headers["x-keysat-previous-signature"])
        XCTAssertEqual(try independent(whpk, without, scratch: scratch), [true])

        // listen with the right public key says valid; with another, INVALID.
        let keyFile = try scratch.write("listen.pk", whpk + "\n")
        let (listen, port, out) = try startListen(scratch, ["--public-key-file", keyFile, "--count", "1", "--json"])
        defer { listen.terminate() }
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "update", id, "--url", "http://127.0.0.1:\(port)/", "--db", db.path])
                .status, 0)
        _ = try db.enqueue(["e", "2"])
        XCTAssertEqual(try db.deliver().status, 0)
        listen.waitUntilExit()
        let line = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any])
        XCTAssertEqual(line["signature"] as? String, "valid")
        XCTAssertEqual(line["scheme"] as? String, "standard-webhooks-v1a")

        let otherKey = try XCTUnwrap(try addEndpoint(db, receiver, path: "/x")["public_key"] as? String)
        let wrongFile = try scratch.write("wrong.pk", otherKey + "\n")
        let (wrong, wrongPort, wrongOut) = try startListen(scratch, ["--public-key-file", wrongFile, "--count", "1"])
        defer { wrong.terminate() }
        XCTAssertEqual(
            try runTool(
                "keysat-webhooks", ["endpoint", "update", id, "--url", "http://127.0.0.1:\(wrongPort)/", "--db", db.path]
            ).status, 0)
        _ = try db.enqueue(["e", "3"])
        _ = try db.deliver()
        wrong.waitUntilExit()
        XCTAssertTrue(try String(contentsOfFile: wrongOut, encoding: .utf8).contains("signature=INVALID"))

        // --keysat-signature turns it back on.
        XCTAssertEqual(
            try runTool(
                "keysat-webhooks",
                ["endpoint", "update", id, "--keysat-signature", "--url", receiver.url("/status/204"), "--db", db.path]
            ).status, 0)
        _ = try db.enqueue(["e", "4"])
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try XCTUnwrap(receiver.requests().last).signatureOK, true)
    }

    /// The Standard Webhooks reference library's test key (libraries/go/webhook_asymmetric_test.go
    /// in standard-webhooks/standard-webhooks: seed "TESTSIGNINGKEYDONOTUSETHISFORANY"), given
    /// in Svix's whsk_ form; its public key as pyca/cryptography derives it.
    static let testSigningKey =
        "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTllmU3h6Dt1JKqLSahf2FBSTeius6i4rdBVBKUlrbjxz+A=="
    static let testPublicKey = "whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g="

    func testSigningKeyFilesAndHMACOnlyAgain() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let id = try db.addEndpoint(on: receiver, path: "/status/204")

        // A key file others can read is refused, and changes nothing.
        let open = try scratch.write("open.whsk", Self.testSigningKey + "\n", mode: 0o644)
        let refused = try runTool(
            "keysat-webhooks", ["endpoint", "update", id, "--signing-key-file", open, "--db", db.path])
        XCTAssertEqual(refused.status, 77, refused.stderr)
        XCTAssertTrue(refused.stderr.hasPrefix("keysat-webhooks: error: signing key file"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("chmod o-rwx"))
        // A key of the wrong length, a public key, a whsec_: refused (65) without quoting them.
        for (name, text) in [
            ("short", "whsk_" + String(Self.testSigningKey.dropFirst(5).prefix(44))),
            ("public", Self.testPublicKey), ("whsec", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ] {
            let file = try scratch.write(name, text + "\n", mode: 0o600)
            let result = try runTool(
                "keysat-webhooks", ["endpoint", "update", id, "--signing-key-file", file, "--db", db.path])
            XCTAssertEqual(result.status, 65, "\(name): \(result.stderr)")
            XCTAssertTrue(result.stderr.hasPrefix("keysat-webhooks: error: "), result.stderr)
            XCTAssertFalse(result.stderr.contains(String(text.dropFirst(5).prefix(10))), result.stderr)
        }
        XCTAssertEqual(
            try SQL.value(db.path, "SELECT count(*) FROM webhook_endpoints WHERE signing_key IS NOT NULL"), "0")

        // A private key file: imported, and its public key is the one the reference derives.
        let key = try scratch.write("key.whsk", Self.testSigningKey + "\n", mode: 0o600)
        let updated = try runTool(
            "keysat-webhooks", ["endpoint", "update", id, "--signing-key-file", key, "--json", "--db", db.path])
        XCTAssertEqual(try json(updated)["public_key"] as? String, Self.testPublicKey)
        _ = try db.enqueue(["e", "1"])
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(
            try independent(Self.testPublicKey, try XCTUnwrap(receiver.requests().last), scratch: scratch), [true])
        // A private key is not a receiver's key.
        let asPublic = try runTool("keysat-webhooks", ["verify", "--public-key-file", key, "--header", "a: b"])
        XCTAssertEqual(asPublic.status, 65)
        XCTAssertTrue(asPublic.stderr.contains("signing key (whsk_)"), asPublic.stderr)

        // --signature hmac: back to v1 only, the key erased.
        let back = try json(
            runTool("keysat-webhooks", ["endpoint", "update", id, "--signature", "hmac", "--json", "--db", db.path]))
        XCTAssertEqual(back["signature"] as? String, "hmac")
        XCTAssertTrue(back["public_key"] is NSNull)
        _ = try db.enqueue(["e", "2"])
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(
            try XCTUnwrap(receiver.requests().last).headers["webhook-signature"]?.hasPrefix("v1,"), true)
        XCTAssertEqual(
            try SQL.value(db.path, "SELECT count(*) FROM webhook_endpoints WHERE signing_key IS NOT NULL"), "0")

        // Contradictions are usage errors.
        XCTAssertEqual(
            try runTool(
                "keysat-webhooks",
                ["endpoint", "update", id, "--keysat-signature", "--no-keysat-signature", "--db", db.path]
            ).status, 64)
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["verify", "--public-key-file", key, "--scheme", "keysat"]).status, 64)
    }

    /// A signing key another program wrote that is not a whsk_ key: the endpoint is held (its
    /// deliveries stay due, said once per run) rather than sent without the v1a signature its
    /// receivers verify; a new key pair repairs it.
    func testAStoredSigningKeyThatIsNotOneHoldsTheEndpoint() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint(on: receiver, path: "/status/204")
        try SQL.execute(db.path, "UPDATE webhook_endpoints SET signing_key = 'whsk_bm90IGEga2V5'")
        let ids = try db.enqueue(["license.issued", "{}"]).lines
        let held = try db.deliver()
        XCTAssertEqual(held.status, 0, held.stderr)
        XCTAssertEqual(held.stderr.split(separator: "\n").count, 1, held.stderr)
        XCTAssertTrue(held.stderr.contains("signing key is not a whsk_ key; its deliveries wait"), held.stderr)
        XCTAssertEqual(try receiver.requests().count, 0)
        XCTAssertEqual(try db.row(try XCTUnwrap(ids.first))["attempt_count"] as? Int, 0)
        let repaired = try runTool(
            "keysat-webhooks", ["endpoint", "update", endpoint, "--signature", "hmac", "--db", db.path])
        XCTAssertEqual(repaired.status, 0, repaired.stderr)
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try receiver.requests().count, 1)
    }
}
