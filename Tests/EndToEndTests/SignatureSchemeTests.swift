import Foundation
import XCTest

/// Standard Webhooks signatures, checked by the Python libraries receivers use, rotation, and `verify`.
final class SignatureSchemeTests: XCTestCase {
    /// Verifies a request with the standardwebhooks and svix packages; returns their verdicts.
    private func libraries(_ whsec: String, headers: [String: String], body: Data, scratch: Scratch) throws
        -> [String: String]
    {
        let bodyFile = scratch.file("body-\(UUID().uuidString)")
        try body.write(to: URL(fileURLWithPath: bodyFile))
        let wanted = ["webhook-id", "webhook-timestamp", "webhook-signature"]
        let picked = headers.filter { wanted.contains($0.key) }
        let json = String(decoding: try JSONSerialization.data(withJSONObject: picked), as: UTF8.self)
        let script = Binaries.packageRoot.appendingPathComponent(
            "Tests/EndToEndTests/Fixtures/verify_standard.py"
        ).path
        let result = try runTool("/usr/bin/env", ["python3", script, whsec, json, bodyFile])
        XCTAssertEqual(result.status, 0, result.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: result.stdout) as? [String: String])
    }

    /// `keysat-webhooks verify` on a received request; returns its exit status and message.
    private func verify(
        _ secret: String, headers: [String: String], body: Data, scratch: Scratch, extra: [String] = []
    ) throws -> ProcessResult {
        let secretFile = try scratch.write("verify-secret", secret + "\n", mode: 0o600)
        let bodyFile = scratch.file("verify-body")
        try body.write(to: URL(fileURLWithPath: bodyFile))
        let headerArguments = headers.sorted { $0.key < $1.key }.flatMap {
            ["--header", "\($0.key): \($0.value)"]
        }
        return try runTool(
            "keysat-webhooks", ["verify", "--secret-file", secretFile] + headerArguments + extra + [bodyFile])
    }

    private func addEndpoint(_ db: TestDatabase, _ receiver: Receiver, path: String) throws -> (
        id: String, secret: String, whsec: String
    ) {
        let result = try runTool(
            "keysat-webhooks", ["endpoint", "add", receiver.url(path), "--json", "--db", db.path])
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        let secret = try XCTUnwrap(object["secret"] as? String)
        try receiver.expectSecret(secret, forPath: path)
        return (
            try XCTUnwrap(object["id"] as? String), secret, try XCTUnwrap(object["secret_whsec"] as? String)
        )
    }

    func testDeliveriesVerifyWithTheStandardWebhooksAndSvixLibraries() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try addEndpoint(db, receiver, path: "/status/204")
        let id = try XCTUnwrap(db.enqueue(["license.issued", #"{"n": 1.10}"#]).lines.first)
        XCTAssertEqual(try db.deliver().status, 0)
        let request = try XCTUnwrap(receiver.requests().first)
        XCTAssertEqual(request.headers["webhook-id"], id)
        XCTAssertEqual(
            Double(request.headers["webhook-timestamp"] ?? "") ?? 0, request.receivedAt, accuracy: 5)
        XCTAssertEqual(
            try libraries(endpoint.whsec, headers: request.headers, body: request.body, scratch: scratch),
            ["standardwebhooks": "ok", "svix": "ok"])
        XCTAssertEqual(
            try verify(endpoint.whsec, headers: request.headers, body: request.body, scratch: scratch).status,
            0)
        XCTAssertEqual(
            try verify(endpoint.secret, headers: request.headers, body: request.body, scratch: scratch)
                .status, 0, "the hex form works too")
        let keysatOnly = request.headers.filter { $0.key.hasPrefix("x-keysat") }
        XCTAssertEqual(
            try verify(
                endpoint.secret, headers: keysatOnly, body: request.body, scratch: scratch,
                extra: ["--scheme", "keysat"]
            ).status, 0)

        // A tampered body, a wrong secret: rejected by both libraries and by verify.
        var tampered = request.body
        tampered.append(0x20)
        let other = "whsec_" + Data("another-secret-entirely-000000000".utf8).base64EncodedString()
        for (secret, body) in [(endpoint.whsec, tampered), (other, request.body)] {
            let verdicts = try libraries(secret, headers: request.headers, body: body, scratch: scratch)
            XCTAssertTrue(verdicts["standardwebhooks"]?.hasPrefix("error") == true, "\(verdicts)")
            XCTAssertTrue(verdicts["svix"]?.hasPrefix("error") == true, "\(verdicts)")
            let result = try verify(secret, headers: request.headers, body: body, scratch: scratch)
            XCTAssertEqual(result.status, 1)
            XCTAssertTrue(result.stderr.contains("bad signature"), result.stderr)
        }
        XCTAssertEqual(
            try verify(
                endpoint.secret, headers: keysatOnly, body: tampered, scratch: scratch,
                extra: ["--scheme", "either"]
            ).status, 1)
    }

    func testATimestampOutsideToleranceIsRejected() throws {
        let scratch = try Scratch()
        let secret = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
        let whsec = "whsec_" + Data(secret.utf8).base64EncodedString()
        let body = Data(#"{"event_type":"e","timestamp":"t","data":1}"#.utf8)
        // Signed correctly (by Python's hmac, independently of the tool), but ten minutes ago.
        let old = Int(Date().timeIntervalSince1970) - 600
        let mac = try IndependentHMAC.sha256(
            key: Data(secret.utf8), message: Data("msg_1.\(old).".utf8) + body)
        let headers = [
            "webhook-id": "msg_1", "webhook-timestamp": String(old),
            "webhook-signature": "v1," + mac.base64EncodedString(),
        ]
        let verdicts = try libraries(whsec, headers: headers, body: body, scratch: scratch)
        XCTAssertTrue(verdicts["standardwebhooks"]?.hasPrefix("error") == true, "\(verdicts)")
        XCTAssertTrue(verdicts["svix"]?.hasPrefix("error") == true, "\(verdicts)")
        let rejected = try verify(whsec, headers: headers, body: body, scratch: scratch)
        XCTAssertEqual(rejected.status, 1)
        XCTAssertTrue(rejected.stderr.contains("timestamp outside tolerance"), rejected.stderr)
        XCTAssertEqual(
            try verify(whsec, headers: headers, body: body, scratch: scratch, extra: ["--tolerance", "900"])
                .status, 0)
        var missing = headers
        missing.removeValue(forKey: "webhook-id")
        let noID = try verify(whsec, headers: missing, body: body, scratch: scratch)
        XCTAssertEqual(noID.status, 1)
        XCTAssertTrue(noID.stderr.contains("missing header webhook-id"), noID.stderr)
        XCTAssertTrue(
            try verify(whsec, headers: [:], body: body, scratch: scratch).stderr.contains("missing header"))
    }

    func testVerifyUsage() throws {
        XCTAssertEqual(try runTool("keysat-webhooks", ["verify", "--secret", "x"]).status, 64)
        let noSecret = try runTool("keysat-webhooks", ["verify", "--header", "a: b"], stdin: Data("{}".utf8))
        XCTAssertEqual(noSecret.status, 64)
        XCTAssertTrue(noSecret.stderr.contains("KEYSAT_WEBHOOK_SECRET"), noSecret.stderr)
        XCTAssertEqual(
            try runTool(
                "keysat-webhooks", ["verify", "--header", "no-colon"],
                environment: ["KEYSAT_WEBHOOK_SECRET": "s"]
            ).status, 64)
        let fromEnvironment = try runTool(
            "keysat-webhooks", ["verify", "--header", "X-Keysat-Signature: sha256=00"],
            stdin: Data("{}".utf8),
            environment: ["KEYSAT_WEBHOOK_SECRET": "some-secret-value"])
        XCTAssertEqual(fromEnvironment.status, 1)
    }

    func testRotationSignsWithBothSecretsThenErasesTheOldOne() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try addEndpoint(db, receiver, path: "/status/204")
        // Another program (Keysat itself) keeps the database open all along, so the WAL is not
        // removed when our processes close it: erasing must clean it up by itself.
        let holder = onPostgreSQL ? nil : try db.holdOpen()
        defer { holder?.terminate() }
        let rotated = try runTool(
            "keysat-webhooks",
            ["endpoint", "rotate-secret", endpoint.id, "--grace", "1h", "--json", "--db", db.path])
        XCTAssertEqual(rotated.status, 0, rotated.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: rotated.stdout) as? [String: Any])
        let newSecret = try XCTUnwrap(object["secret"] as? String)
        let newWhsec = try XCTUnwrap(object["secret_whsec"] as? String)
        XCTAssertNotEqual(newSecret, endpoint.secret)
        XCTAssertTrue(object["previous_secret_expires_at"] is String)
        try receiver.expectSecret(newSecret, forPath: "/status/204")

        _ = try db.enqueue(["e", "1"])
        XCTAssertEqual(try db.deliver().status, 0)
        let during = try XCTUnwrap(receiver.requests().last)
        XCTAssertEqual(during.signatureOK, true, "X-Keysat-Signature uses the new secret")
        XCTAssertEqual(during.headers["webhook-signature"]?.split(separator: " ").count, 2)
        let previous = try XCTUnwrap(during.headers["x-keysat-previous-signature"])
        let oldMac = try IndependentHMAC.sha256(key: Data(endpoint.secret.utf8), message: during.body)
        XCTAssertEqual(previous, "sha256=" + oldMac.map { String(format: "%02x", $0) }.joined())
        // A receiver holding only the old secret, and one holding only the new, both verify.
        for whsec in [endpoint.whsec, newWhsec] {
            XCTAssertEqual(
                try libraries(whsec, headers: during.headers, body: during.body, scratch: scratch),
                ["standardwebhooks": "ok", "svix": "ok"])
            XCTAssertEqual(
                try verify(whsec, headers: during.headers, body: during.body, scratch: scratch).status, 0)
        }

        // The grace period ends; the next run erases the old secret, from the file and its WAL.
        try SQL.execute(
            db.path,
            "UPDATE webhook_endpoints SET previous_secret_expires_at = '2000-01-01T00:00:00.000000+00:00'")
        _ = try db.enqueue(["e", "2"])
        XCTAssertEqual(try db.deliver().status, 0)
        let after = try XCTUnwrap(receiver.requests().last)
        XCTAssertEqual(after.headers["webhook-signature"]?.split(separator: " ").count, 1)
        XCTAssertNil(after.headers["x-keysat-previous-signature"])
        XCTAssertEqual(
            try libraries(newWhsec, headers: after.headers, body: after.body, scratch: scratch),
            ["standardwebhooks": "ok", "svix": "ok"])
        let oldVerdicts = try libraries(
            endpoint.whsec, headers: after.headers, body: after.body, scratch: scratch)
        XCTAssertTrue(oldVerdicts["svix"]?.hasPrefix("error") == true)
        XCTAssertTrue(oldVerdicts["standardwebhooks"]?.hasPrefix("error") == true)
        XCTAssertEqual(
            try verify(endpoint.whsec, headers: after.headers, body: after.body, scratch: scratch).status, 1)
        XCTAssertEqual(
            try SQL.value(
                db.path, "SELECT count(*) FROM webhook_endpoints WHERE previous_secret IS NOT NULL"), "0")
        // Erased from SQLite's file and its WAL too (PostgreSQL's files are the server's).
        for suffix in ["", "-wal", "-shm"] where !onPostgreSQL {
            guard let bytes = FileManager.default.contents(atPath: db.path + suffix) else { continue }
            XCTAssertNil(
                bytes.range(of: Data(endpoint.secret.utf8)), "the old secret lingers in keysat.db\(suffix)")
        }
        if !onPostgreSQL {
            XCTAssertNotNil(
                FileManager.default.contents(atPath: db.path)?.range(of: Data(newSecret.utf8)),
                "the check can find a secret")
        }
        XCTAssertEqual(
            try runTool(
                "keysat-webhooks",
                ["endpoint", "rotate-secret", endpoint.id, "--grace", "soon", "--db", db.path]
            ).status, 64)
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "rotate-secret", "nope", "--db", db.path]).status, 65)
    }

    /// Replay protection cannot be stripped (issue 20): a captured webhook with its `webhook-*`
    /// headers removed, sent again past the tolerance, verified by `X-Keysat-Signature` alone.
    /// By default it is refused by `verify` and `listen`; asked for, it is accepted and said to
    /// have no replay protection.
    func testAWebhookStrippedOfItsTimestampAndReplayedIsRefusedByDefault() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try addEndpoint(db, receiver, path: "/status/204")
        _ = try db.enqueue(["license.revoked", #"{"license":"L1"}"#])
        XCTAssertEqual(try db.deliver().status, 0)
        let captured = try XCTUnwrap(receiver.requests().first)
        sleep(2)  // past a tolerance of 1 s
        let late = try verify(
            endpoint.secret, headers: captured.headers, body: captured.body, scratch: scratch,
            extra: ["--tolerance", "1"])
        XCTAssertEqual(late.status, 1)
        XCTAssertTrue(late.stderr.contains("timestamp outside tolerance"), late.stderr)
        let stripped = captured.headers.filter { !$0.key.hasPrefix("webhook-") }
        for extra in [[], ["--scheme", "standard"]] {
            let replayed = try verify(
                endpoint.secret, headers: stripped, body: captured.body, scratch: scratch,
                extra: ["--tolerance", "1", "--json"] + extra)
            XCTAssertEqual(replayed.status, 1, "\(extra)")
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: replayed.stdout) as? [String: Any])
            XCTAssertEqual(object["valid"] as? Bool, false)
            XCTAssertTrue((object["error"] as? String)?.contains("missing header webhook-signature") == true)
        }
        for scheme in ["keysat", "either"] {
            let accepted = try verify(
                endpoint.secret, headers: stripped, body: captured.body, scratch: scratch,
                extra: ["--scheme", scheme, "--json"])
            XCTAssertEqual(accepted.status, 0, accepted.stderr)
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: accepted.stdout) as? [String: Any])
            XCTAssertEqual(object["scheme"] as? String, "keysat")
            XCTAssertEqual(object["replay_protection"] as? Bool, false)
            let said = try verify(
                endpoint.secret, headers: stripped, body: captured.body, scratch: scratch,
                extra: ["--scheme", scheme])
            XCTAssertTrue(said.stderr.contains("no replay protection"), said.stderr)
        }
        // listen: the same request sent raw is INVALID by default, valid without replay
        // protection when asked for.
        let head = stripped.filter { !["host", "content-length", "connection"].contains($0.key) }
            .map { "\($0.key): \($0.value)\r\n" }.joined()
        let request =
            "POST /hook HTTP/1.1\r\nHost: a\r\n\(head)Content-Length: \(captured.body.count)\r\nConnection: close\r\n\r\n"
            + String(decoding: captured.body, as: UTF8.self)
        for (extra, expected) in [
            ([String](), "INVALID"), (["--scheme", "either"], "valid(no-replay-protection)"),
        ] {
            let (process, port, out) = try startListen(
                scratch, ["--count", "1"] + extra, environment: ["KEYSAT_WEBHOOK_SECRET": endpoint.secret])
            defer { if process.isRunning { process.terminate() } }
            XCTAssertEqual(try rawHTTP(port: port, request), "HTTP/1.1 204 No Content")
            process.waitUntilExit()
            let line = try String(contentsOfFile: out, encoding: .utf8)
            XCTAssertTrue(line.contains("signature=\(expected) "), line)
        }
        let (process, port, out) = try startListen(
            scratch, ["--count", "1", "--scheme", "keysat", "--json"],
            environment: ["KEYSAT_WEBHOOK_SECRET": endpoint.secret])
        defer { if process.isRunning { process.terminate() } }
        XCTAssertEqual(try rawHTTP(port: port, request), "HTTP/1.1 204 No Content")
        process.waitUntilExit()
        let object = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any])
        XCTAssertEqual(object["signature"] as? String, "valid")
        XCTAssertEqual(object["scheme"] as? String, "keysat")
        XCTAssertEqual(object["replay_protection"] as? Bool, false)
    }

    /// A malformed secret is named as such (65), never "bad signature"; durations are refused
    /// below what they feed can mean (a 0 ms limit is "none" to libcurl) with a message that
    /// names the option, never "Missing value".
    func testMalformedSecretsAndDurationsAreNamed() throws {
        let scratch = try Scratch()
        let body = try scratch.write("body", "{}")
        for (secret, why) in [
            ("whsec_!!!!not-base64!!!!", "malformed"), ("whsec_AAAA", "malformed"), ("short", "16 to 512"),
            ("0123456789abcdef\u{1}0123456789abcdef", "16 to 512"),
        ] {
            let file = try scratch.write("secret", secret + "\n", mode: 0o600)
            let result = try runTool(
                "keysat-webhooks",
                ["verify", "--secret-file", file, "--header", "webhook-signature: v1,AAAA", body])
            XCTAssertEqual(result.status, 65, "\(secret): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(why), result.stderr)
            XCTAssertFalse(result.stderr.contains("bad signature"), result.stderr)
            XCTAssertEqual(try runTool("keysat-webhooks", ["listen", "--secret-file", file]).status, 65)
        }
        let secretFile = try scratch.write("good", "0123456789abcdef0123456789abcdef\n", mode: 0o600)
        for tolerance in ["-5", "0", "0s", "1.5", "soon"] {
            let result = try runTool(
                "keysat-webhooks", ["verify", "--secret-file", secretFile, "--tolerance", tolerance, body])
            XCTAssertEqual(result.status, 64, "--tolerance \(tolerance)")
            XCTAssertTrue(result.stderr.contains("'--tolerance' must be"), result.stderr)
        }
        for timeout in ["0.0001", "0", "-5", "0.0004"] {
            let result = try runTool(
                "keysat-webhooks",
                ["listen", "--forward-to", "http://127.0.0.1:1/", "--forward-timeout", timeout])
            XCTAssertEqual(result.status, 64, "--forward-timeout \(timeout)")
            XCTAssertTrue(result.stderr.contains("'--forward-timeout' must be"), result.stderr)
        }
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["verify", "--scheme", "hmac", "--secret-file", secretFile, body])
                .status, 64)
    }
}
