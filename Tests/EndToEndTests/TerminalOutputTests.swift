import Foundation
import XCTest

/// What a receiver or a payload says reaches a person's terminal escaped, and JSON output stays
/// exact (issue 12, classes 9 and 10).
final class TerminalOutputTests: XCTestCase {
    /// A receiver that answers every request 500 with a body of terminal control sequences.
    private func hostileReceiver(_ scratch: Scratch) throws -> (Process, Int) {
        let script = """
            import socket, sys, os
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0)); s.listen(16)
            open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1])); os.rename(sys.argv[1] + ".tmp", sys.argv[1])
            body = b"\\x1b[2J\\x1b]0;pwned\\x07\\rboo\\xc2\\x9b31m"
            while True:
                c, _ = s.accept(); data = b""
                while b"\\r\\n\\r\\n" not in data:
                    chunk = c.recv(65536)
                    if not chunk: break
                    data += chunk
                c.sendall(b"HTTP/1.1 500 Oops\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n" % len(body) + body)
                c.close()
            """
        let portFile = scratch.file("hostile.port")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, portFile]
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: portFile) && Date() < deadline { usleep(20_000) }
        return (process, Int(try String(contentsOfFile: portFile, encoding: .utf8)) ?? 0)
    }

    private func assertNoControls(
        _ text: String, _ what: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        let raw = text.unicodeScalars.filter {
            ($0.value < 0x20 && $0 != "\n") || (0x7F...0x9F).contains($0.value)
        }
        XCTAssertTrue(
            raw.isEmpty, "\(what) printed raw control characters: \(raw.map { $0.value })", file: file,
            line: line)
    }

    func testReceiverBytesArePrintedEscapedAndJSONStaysExact() throws {
        let scratch = try Scratch()
        let (receiver, port) = try hostileReceiver(scratch)
        defer { receiver.terminate() }
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint("http://127.0.0.1:\(port)/hook")
        // A payload with a DEL and a C1 control inside a JSON string (both valid JSON).
        let id = try XCTUnwrap(db.enqueue(["e", "{\"note\":\"a\u{7f}b\u{9b}c\"}"]).lines.first)
        let run = try db.deliver()
        XCTAssertEqual(run.status, 0, run.stderr)
        assertNoControls(run.stderr, "keysat-deliver's log")

        let show = try runTool("keysat-webhooks", ["deliveries", "show", id, "--db", db.path])
        XCTAssertEqual(show.status, 0, show.stderr)
        assertNoControls(show.output, "deliveries show")
        XCTAssertTrue(
            show.output.contains("\\u001b[2J\\u001b]0;pwned\\u0007\\u000dboo\\u009b31m"), show.output)
        XCTAssertTrue(show.output.contains("a\\u007fb\\u009bc"), show.output)
        for arguments in [
            ["deliveries", "list"], ["stats"], ["endpoint", "list"], ["endpoint", "show", endpoint],
        ] {
            let result = try runTool("keysat-webhooks", arguments + ["--db", db.path])
            XCTAssertEqual(result.status, 0, result.stderr)
            assertNoControls(result.output, arguments.joined(separator: " "))
        }
        // JSON output: escaped as JSON, and exactly the bytes received once parsed.
        let json = try runTool("keysat-webhooks", ["deliveries", "show", id, "--json", "--db", db.path])
        assertNoControls(json.output, "deliveries show --json")
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: json.stdout) as? [String: Any])
        let error = try XCTUnwrap(object["last_error"] as? String)
        XCTAssertEqual(error, "non-2xx response: \u{1b}[2J\u{1b}]0;pwned\u{07}\rboo\u{9b}31m")
        let data = (object["payload"] as? [String: Any])?["data"] as? [String: Any]
        XCTAssertEqual(data?["note"] as? String, "a\u{7f}b\u{9b}c")
    }

    func testADeeplyNestedPayloadPrintsInLinearSpace() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()
        let id = try XCTUnwrap(db.enqueue(["e", "{}"]).lines.first)
        let nest = String(repeating: "[", count: 500) + "1" + String(repeating: "]", count: 500)
        let payload = "[" + Array(repeating: nest, count: 200).joined(separator: ",") + "]"
        let update = "UPDATE webhook_deliveries SET payload_json = '\(payload)' WHERE id = '\(id)';"
        XCTAssertEqual(try runTool("/usr/bin/sqlite3", [db.path], stdin: Data(update.utf8)).status, 0)
        let started = Date()
        let show = try runTool("keysat-webhooks", ["deliveries", "show", id, "--db", db.path])
        XCTAssertEqual(show.status, 0, show.stderr)
        XCTAssertLessThan(show.stdout.count, 80 * payload.utf8.count, "output grows faster than the payload")
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
    }
}
