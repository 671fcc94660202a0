import Foundation
import XCTest

final class ListenTests: XCTestCase {
    func testVerifiesSignaturesPrintsALinePerDeliveryAndStopsAfterCount() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let secretFile = try scratch.write("secret", "0123456789abcdef0123456789abcdef\n", mode: 0o600)
        let (process, port, out) = try startListen(
            scratch, ["--count", "20"],
            environment: ["KEYSAT_WEBHOOK_SECRET": "0123456789abcdef0123456789abcdef"])
        XCTAssertEqual(
            try runTool(
                "keysat-webhooks",
                [
                    "endpoint", "add", "http://127.0.0.1:\(port)/good", "--secret-file", secretFile,
                    "--event", "good", "--db", db.path,
                ]
            ).status, 0)
        try db.addEndpoint("http://127.0.0.1:\(port)/bad", events: ["bad"])
        var good: Set<String> = []
        for i in 0..<15 { good.formUnion(try db.enqueue(["good", "{\"i\":\(i)}"]).lines) }
        var bad: Set<String> = []
        for i in 0..<5 { bad.formUnion(try db.enqueue(["bad", "\(i)"]).lines) }
        let result = try db.deliver(["--concurrency", "8"])
        XCTAssertEqual(result.status, 0, result.stderr)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "listen exits by itself after --count deliveries")
        XCTAssertEqual(try db.count(where: "delivered_at IS NOT NULL AND last_status_code = 204"), 20)
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 20)
        for line in lines {
            let fields = line.split(separator: " ").map(String.init)
            XCTAssertEqual(fields.count, 5, String(line))
            if good.contains(fields[0]) {
                XCTAssertEqual(fields[1], "good")
                XCTAssertEqual(fields[2], "signature=valid")
            } else {
                XCTAssertTrue(bad.contains(fields[0]), String(line))
                XCTAssertEqual(fields[2], "signature=INVALID")
            }
        }
    }

    func testJSONLinesRespondStatusAndUsage() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let (process, port, out) = try startListen(scratch, ["--json", "--respond", "503", "--count", "1"])
        try db.addEndpoint("http://127.0.0.1:\(port)/x")
        let id = try XCTUnwrap(db.enqueue(["e", #"{"n": 1.10}"#]).lines.first)
        XCTAssertEqual(try db.deliver().status, 0)
        process.waitUntilExit()
        let object = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any])
        XCTAssertEqual(object["delivery_id"] as? String, id)
        XCTAssertEqual(object["signature"] as? String, "unchecked")
        XCTAssertEqual((object["body"] as? [String: Any])?["event_type"] as? String, "e")
        XCTAssertEqual(try db.row(id)["last_status_code"] as? Int, 503)
        XCTAssertEqual(try runTool("keysat-webhooks", ["listen", "--respond", "99"]).status, 64)
        XCTAssertEqual(try runTool("keysat-webhooks", ["listen", "--secret", "x"]).status, 64)
    }

    /// One unauthenticated request must not end the listener: extreme integers in the headers
    /// it reads are answered, and the next request is served (issue 12, class 3).
    func testHostileHeadersAreAnsweredAndTheListenerGoesOn() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let secret = "0123456789abcdef0123456789abcdef"
        let (process, port, out) = try startListen(
            scratch, ["--count", "4"], environment: ["KEYSAT_WEBHOOK_SECRET": secret])
        defer { if process.isRunning { process.terminate() } }
        for timestamp in ["-9223372036854775808", "9223372036854775807", "99999999999999999999999"] {
            let body = "{}"
            let status = try rawHTTP(
                port: port,
                "POST /x HTTP/1.1\r\nHost: a\r\nwebhook-id: msg_1\r\nwebhook-timestamp: \(timestamp)\r\n"
                    + "webhook-signature: v1,AAAA\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
            )
            XCTAssertEqual(status, "HTTP/1.1 204 No Content", timestamp)
            XCTAssertTrue(process.isRunning, "the listener died on webhook-timestamp \(timestamp)")
        }
        for length in ["-1", "9223372036854775807", "99999999999999999999", "1e3", ""] {
            let status = try rawHTTP(
                port: port, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: \(length)\r\n\r\n{}")
            XCTAssertEqual(status, "HTTP/1.1 400 Bad Request", "Content-Length: \(length)")
            XCTAssertTrue(process.isRunning, "the listener died on Content-Length \(length)")
        }
        // Control bytes a sender puts in the headers are refused (issue 20: they fail the check a
        // run's own header lines pass), so they never reach the terminal.
        let status = try rawHTTP(
            port: port,
            "POST /x HTTP/1.1\r\nX-Keysat-Delivery: a\u{1b}[2Jb\r\nX-Keysat-Event: e\u{7}v\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        XCTAssertEqual(status, "HTTP/1.1 400 Bad Request")
        // And a real delivery is still received and verified.
        let secretFile = try scratch.write("secret", secret + "\n", mode: 0o600)
        XCTAssertEqual(
            try runTool(
                "keysat-webhooks",
                [
                    "endpoint", "add", "http://127.0.0.1:\(port)/good", "--secret-file", secretFile, "--db",
                    db.path,
                ]
            ).status, 0)
        let id = try XCTUnwrap(db.enqueue(["good", "{}"]).lines.first)
        XCTAssertEqual(try db.deliver().status, 0)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 4, lines.joined(separator: "\n"))
        XCTAssertTrue(
            lines.allSatisfy { !$0.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f } })
        XCTAssertTrue(lines.last!.hasPrefix("\(id) good signature=valid"), lines.last!)
    }

    /// `listen --forward-to` (issue 15): verifies, prints and passes each request on, body and
    /// headers unchanged, answering with the application's status.
    func testForwardToPassesRequestsOnUnchangedAndAnswersWithTheApplicationsStatus() throws {
        let scratch = try Scratch()
        let application = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let secret = "0123456789abcdef0123456789abcdef"
        let (process, port, out) = try startListen(
            scratch, ["--count", "2", "--forward-to", application.url("/status/503"), "--print-headers"],
            environment: ["KEYSAT_WEBHOOK_SECRET": secret])
        defer { if process.isRunning { process.terminate() } }
        let secretFile = try scratch.write("secret", secret + "\n", mode: 0o600)
        XCTAssertEqual(
            try runTool(
                "keysat-webhooks",
                [
                    "endpoint", "add", "http://127.0.0.1:\(port)/hook", "--secret-file", secretFile, "--db",
                    db.path,
                ]
            ).status, 0)
        try application.expectSecret(secret, forPath: "/status/503")
        let id = try XCTUnwrap(db.enqueue(["license.issued", #"{"n":1}"#]).lines.first)
        XCTAssertEqual(try db.deliver().status, 0)
        // The sender got the application's answer.
        XCTAssertEqual(try db.row(id)["last_status_code"] as? Int, 503)
        let forwarded = try XCTUnwrap(application.requests().first)
        XCTAssertEqual(forwarded.signatureOK, true, "the body and signature arrived unchanged")
        XCTAssertEqual(forwarded.deliveryID, id)
        XCTAssertEqual(
            forwarded.body,
            Data(
                try XCTUnwrap(
                    SQL.rows(db.path, "SELECT payload_json FROM webhook_deliveries WHERE id = '\(id)'")
                        .first?["payload_json"] as? String
                ).utf8))
        for name in [
            "webhook-id", "webhook-timestamp", "webhook-signature", "x-keysat-signature", "content-type",
            "user-agent",
        ] {
            XCTAssertNotNil(forwarded.headers[name], name)
        }
        XCTAssertTrue(forwarded.headers["user-agent"]?.hasPrefix("keysat-webhooks/") == true)
        // The line says where it went; --print-headers lists them.
        try db.makeAllDue()
        XCTAssertEqual(try db.deliver().status, 0)
        process.waitUntilExit()
        let text = try String(contentsOfFile: out, encoding: .utf8)
        XCTAssertTrue(text.contains("\(id) license.issued signature=valid"), text)
        XCTAssertTrue(text.contains(" forwarded=503 "), text)
        XCTAssertTrue(text.contains("\n  webhook-signature: v1,"), text)
        XCTAssertEqual(try application.requests().count, 2)
        // Header for header, what listen received is what the application received (less the
        // connection's own, which curl writes).
        let hopByHop: Set = ["host", "content-length", "connection", "expect", "accept"]
        var printed: [String: String] = [:]
        var firstRequest = true
        for line in text.split(separator: "\n") {
            if !line.hasPrefix("  ") {
                if !printed.isEmpty { firstRequest = false }
                continue
            }
            guard firstRequest, let colon = line.firstIndex(of: ":") else { continue }
            let name = line[line.index(line.startIndex, offsetBy: 2)..<colon].lowercased()
            printed[name] = String(line[line.index(after: colon)...].dropFirst())
        }
        let received = forwarded.headers.filter { !hopByHop.contains($0.key) }
        XCTAssertEqual(printed.filter { !hopByHop.contains($0.key) }, received)
    }

    func testForwardToAnApplicationThatIsDownAnswers502() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let (process, port, out) = try startListen(
            scratch, ["--count", "1", "--forward-to", "http://127.0.0.1:1/app", "--json"])
        defer { if process.isRunning { process.terminate() } }
        try db.addEndpoint("http://127.0.0.1:\(port)/hook")
        let id = try XCTUnwrap(db.enqueue(["license.issued", "{}"]).lines.first)
        XCTAssertEqual(try db.deliver().status, 0)
        process.waitUntilExit()
        XCTAssertEqual(try db.row(id)["last_status_code"] as? Int, 502)
        let object = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any])
        XCTAssertTrue(object["forwarded_status"] is NSNull)
        XCTAssertNotNil(object["forward_error"] as? String)
        XCTAssertNotNil(object["headers"] as? [[String]])
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["listen", "--forward-to", "ftp://x", "--port", "0"]).status, 64)
        XCTAssertEqual(
            try runTool(
                "keysat-webhooks", ["listen", "--forward-to", "http://127.0.0.1:1/", "--respond", "200"]
            ).status, 64)
        XCTAssertEqual(try runTool("keysat-webhooks", ["listen", "--db", "x"]).status, 64)
        XCTAssertEqual(try runTool("keysat-webhooks", ["verify", "--db", "x"]).status, 64)
    }
}
