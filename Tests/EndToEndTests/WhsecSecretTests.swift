import Foundation
import XCTest

/// Secrets in the Standard Webhooks `whsec_` form, and secrets that cannot sign (issue 20):
/// an operator moving from Svix gave `endpoint add --secret-file` a `whsec_` line, which was
/// stored as text, and every Standard Webhooks signature failed.
final class WhsecSecretTests: XCTestCase {
    /// A Svix secret: the base64 of 24 random bytes, which are not text.
    private static let svix = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    private func libraries(_ whsec: String, _ request: Receiver.Request, _ scratch: Scratch) throws -> String
    {
        let bodyFile = scratch.file("body-\(UUID().uuidString)")
        try request.body.write(to: URL(fileURLWithPath: bodyFile))
        let picked = request.headers.filter { $0.key.hasPrefix("webhook-") }
        let json = String(decoding: try JSONSerialization.data(withJSONObject: picked), as: UTF8.self)
        let script = Binaries.packageRoot.appendingPathComponent(
            "Tests/EndToEndTests/Fixtures/verify_standard.py")
        return try runTool("/usr/bin/env", ["python3", script.path, whsec, json, bodyFile]).output
            .trimmingCharacters(in: .newlines)
    }

    /// A `whsec_` secret whose key is text (as this tool prints one) is decoded: both schemes
    /// then sign with the key receivers hold, checked by the standardwebhooks and svix packages
    /// and by the receiver's own HMAC over X-Keysat-Signature; the same for rotate-secret.
    func testAWhsecSecretIsStoredAsTheKeyItStandsFor() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let key = "00112233445566778899aabbccddeeff"
        let whsec = "whsec_" + Data(key.utf8).base64EncodedString()
        let file = try scratch.write("whsec", whsec + "\n", mode: 0o600)
        let added = try runTool(
            "keysat-webhooks",
            [
                "endpoint", "add", receiver.url("/status/204"), "--secret-file", file, "--json", "--db",
                db.path,
            ])
        XCTAssertEqual(added.status, 0, added.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: added.stdout) as? [String: Any])
        XCTAssertEqual(object["secret"] as? String, key)
        XCTAssertEqual(object["secret_whsec"] as? String, whsec)
        try receiver.expectSecret(key, forPath: "/status/204")
        _ = try db.enqueue(["license.issued", "{}"])
        XCTAssertEqual(try db.deliver().status, 0)
        let request = try XCTUnwrap(receiver.requests().last)
        XCTAssertEqual(request.signatureOK, true)
        XCTAssertEqual(try libraries(whsec, request, scratch), #"{"standardwebhooks": "ok", "svix": "ok"}"#)

        let newKey = "ffeeddccbbaa99887766554433221100"
        let newWhsec = "whsec_" + Data(newKey.utf8).base64EncodedString()
        let newFile = try scratch.write("new", newWhsec, mode: 0o600)
        let id = try XCTUnwrap(object["id"] as? String)
        let rotated = try runTool(
            "keysat-webhooks",
            ["endpoint", "rotate-secret", id, "--secret-file", newFile, "--grace", "0", "--db", db.path])
        XCTAssertEqual(rotated.status, 0, rotated.stderr)
        XCTAssertEqual(try SQL.value(db.path, "SELECT secret FROM webhook_endpoints"), newKey)
        try receiver.expectSecret(newKey, forPath: "/status/204")
        _ = try db.enqueue(["license.issued", "{}"])
        XCTAssertEqual(try db.deliver().status, 0)
        let after = try XCTUnwrap(receiver.requests().last)
        XCTAssertEqual(after.signatureOK, true)
        XCTAssertEqual(try libraries(newWhsec, after, scratch), #"{"standardwebhooks": "ok", "svix": "ok"}"#)
    }

    /// A Svix secret's key is binary: Keysat's X-Keysat-Signature (and Keysat's own daemon)
    /// use the stored secret as text, so it is refused with advice and nothing changes. As a
    /// receiver's secret (`verify`, `listen`) it works: it checks what the standardwebhooks
    /// package signs with it.
    func testASvixSecretIsRefusedWithAdviceForAnEndpointAndWorksForAReceiver() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let file = try scratch.write("svix", Self.svix + "\n", mode: 0o600)
        let id = try db.addEndpoint()
        let before = try SQL.dump(db.path)
        let added = try runTool(
            "keysat-webhooks",
            [
                "endpoint", "add", "http://127.0.0.1:9/x", "--secret-file", file, "--allow-duplicate", "--db",
                db.path,
            ])
        XCTAssertEqual(added.status, 65)
        XCTAssertTrue(added.stderr.contains("Standard Webhooks (whsec_) secret"), added.stderr)
        XCTAssertTrue(added.stderr.contains("leave out --secret-file"), added.stderr)
        XCTAssertFalse(added.stderr.contains("MfKQ9r8G"), "the secret is never quoted")
        let rotated = try runTool(
            "keysat-webhooks", ["endpoint", "rotate-secret", id, "--secret-file", file, "--db", db.path])
        XCTAssertEqual(rotated.status, 65, rotated.stderr)
        XCTAssertEqual(try SQL.dump(db.path), before)

        let script = """
            import datetime, sys
            from standardwebhooks.webhooks import Webhook
            now = datetime.datetime.now(tz=datetime.timezone.utc)
            print(Webhook(sys.argv[1]).sign("msg_1", now, '{"a":1}'), int(now.timestamp()))
            """
        let signed = try runTool("/usr/bin/env", ["python3", "-c", script, Self.svix]).output.split(
            separator: " ")
        XCTAssertEqual(signed.count, 2)
        let body = try scratch.write("body", #"{"a":1}"#)
        let arguments = [
            "verify", "--secret-file", file, "--header", "webhook-id: msg_1", "--header",
            "webhook-timestamp: \(signed[1].trimmingCharacters(in: .newlines))", "--header",
            "webhook-signature: \(signed[0])", body,
        ]
        let verified = try runTool("keysat-webhooks", arguments)
        XCTAssertEqual(verified.status, 0, verified.stderr)
    }

    /// Secrets that cannot sign as receivers expect are refused at input (65), changing nothing.
    func testSecretsThatCannotSignAreRefused() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        _ = try db.addEndpoint()
        let before = try SQL.dump(db.path)
        for (name, secret) in [
            ("empty", ""), ("NUL", "0123456789abcdef\u{0}0123456789abcdef"),
            ("control", "0123456789abcdef\u{1b}0123456789abcdef"), ("malformed whsec", "whsec_***"),
            ("whsec of a NUL key", "whsec_" + Data("0123456789abcdef\u{0}0123".utf8).base64EncodedString()),
        ] {
            let file = try scratch.write("secret", secret, mode: 0o600)
            let result = try runTool(
                "keysat-webhooks",
                ["endpoint", "add", "http://127.0.0.1:9/y", "--secret-file", file, "--db", db.path])
            XCTAssertEqual(result.status, 65, "\(name): \(result.stderr)")
            XCTAssertTrue(result.stderr.hasPrefix("keysat-webhooks: error: the secret in "), result.stderr)
        }
        XCTAssertEqual(try SQL.dump(db.path), before)
    }

    /// A secret another program wrote that cannot sign as receivers expect is still used (the
    /// receiver may hold the same bytes), and keysat-deliver warns about it once per run.
    func testASecretRowThatCannotSignIsWarnedAboutOncePerRun() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let id = try db.addEndpoint(receiver.url("/status/204"))
        try SQL.execute(
            db.path,
            "UPDATE webhook_endpoints SET secret = 'abc' || \(SQL.character(db.path, 10)) || 'def' WHERE id = '\(id)'")
        for i in 0..<3 { _ = try db.enqueue(["e", "{\"i\":\(i)}"]) }
        let result = try db.deliver()
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try receiver.requests().count, 3)
        let warnings = result.stderr.components(
            separatedBy: "endpoint secret is empty or holds control bytes")
        XCTAssertEqual(warnings.count - 1, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains(id), result.stderr)
    }
}
