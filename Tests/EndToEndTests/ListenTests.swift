import Foundation
import XCTest

final class ListenTests: XCTestCase {
    /// Starts `keysat-webhooks listen` on a free port; returns the process, its port and its output files.
    private func startListener(_ scratch: Scratch, _ arguments: [String], environment: [String: String] = [:])
        throws -> (Process, Int, String)
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.path("keysat-webhooks"))
        process.arguments = ["listen", "--port", "0"] + arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let out = scratch.file("listen.out")
        let err = scratch.file("listen.err")
        FileManager.default.createFile(atPath: out, contents: nil)
        FileManager.default.createFile(atPath: err, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while true {
            let text = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
            if let range = text.range(
                of: #"listening on http://127\.0\.0\.1:(\d+)/"#, options: .regularExpression)
            {
                let port = Int(text[range].split(separator: ":").last!.dropLast())!
                return (process, port, out)
            }
            guard Date() < deadline, process.isRunning else {
                throw NSError(domain: "listen did not start: \(text)", code: 1)
            }
            usleep(20_000)
        }
    }

    func testVerifiesSignaturesPrintsALinePerDeliveryAndStopsAfterCount() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let secretFile = try scratch.write("secret", "0123456789abcdef0123456789abcdef\n", mode: 0o600)
        let (process, port, out) = try startListener(
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
        let (process, port, out) = try startListener(scratch, ["--json", "--respond", "503", "--count", "1"])
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
}
