import Foundation
import XCTest

/// `keysat-webhooks listen` as an attacker found it (issue 20): smuggling through
/// `--forward-to`, a client that freezes it, memory grown without bound, and serial forwarding.
final class ListenAttackTests: XCTestCase {
    /// The smuggled request: if the application ever logs this path, listen passed it on.
    private static let smuggled =
        "POST /admin/delete-all HTTP/1.1\r\nHost: internal\r\nContent-Length: 0\r\n\r\n"

    /// A Python http.server application behind `listen --forward-to`; raw socket clients send
    /// webhooks with a second request hidden in a header, in each way a parser can be fooled.
    /// Each is answered 400 and the application sees none of them, nor the request inside.
    /// What the application gets is what the sender sent (the adversarial pass: an empty
    /// header was dropped, a form Content-Type and a second User-Agent added, a header the
    /// sender's Connection named passed on).
    func testTheApplicationGetsTheSendersHeadersAsSent() throws {
        let scratch = try Scratch()
        let application = try Receiver(in: scratch)
        let (process, port, _) = try startListen(scratch, ["--forward-to", application.url("/status/200/as-sent")])
        defer { if process.isRunning { process.terminate() } }
        let status = try rawHTTP(
            port: port,
            "POST /as-sent HTTP/1.1\r\nHost: a\r\nUser-Agent: sender/1\r\nX-Empty:\r\nX-Hop: secret\r\n"
                + "Connection: close, X-Hop\r\nContent-Length: 2\r\n\r\n{}")
        XCTAssertEqual(status, "HTTP/1.1 200 OK")
        usleep(200_000)
        let headers = try XCTUnwrap(application.requests().first?.headers)
        XCTAssertEqual(headers["user-agent"], "sender/1")
        XCTAssertEqual(headers["x-empty"], "", "\(headers)")
        XCTAssertNil(headers["x-hop"], "\(headers)")
        XCTAssertNil(headers["content-type"], "\(headers)")
        XCTAssertNil(headers["accept"], "\(headers)")
    }

    func testARequestSmuggledInAHeaderNeverReachesTheApplication() throws {
        let scratch = try Scratch()
        let application = try Receiver(in: scratch)
        let (process, port, out) = try startListen(
            scratch, ["--forward-to", application.url("/status/200/hook")])
        defer { if process.isRunning { process.terminate() } }
        let body = "{}"
        let end = "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        let hidden = Self.smuggled.replacingOccurrences(of: "\r\n", with: "\n")
        let attacks = [
            "bare LF": "X-Keysat-Event: e\n\n\(hidden)\r\n\(end)",
            "bare CR":
                "X-Keysat-Event: e\r\r\(Self.smuggled.replacingOccurrences(of: "\r\n", with: "\r"))\r\n\(end)",
            "NUL": "X-Keysat-Event: e\u{0}\(hidden)\r\n\(end)",
            "space before the colon": "Transfer-Encoding : chunked\r\n\(end)",
            "obs-fold": "X-Keysat-Event: e\r\n \(hidden)\r\n\(end)",
            "two Content-Lengths": "Content-Length: 0\r\n\(end)\(Self.smuggled)",
            "conflicting Transfer-Encoding": "Transfer-Encoding: chunked\r\n\(end)",
            "tab before the colon": "Content-Length\t: 99\r\n\(end)",
            // What signatures cover or name, twice: an application could take the unsigned one.
            "two webhook-ids": "webhook-id: msg_1\r\nwebhook-id: evil\r\n\(end)",
            "two X-Keysat-Signatures": "X-Keysat-Signature: sha256=00\r\nx-keysat-signature: sha256=11\r\n\(end)",
            "two Content-Types": "Content-Type: application/json\r\ncontent-type: text/plain\r\n\(end)",
        ]
        for (name, headers) in attacks.sorted(by: { $0.key < $1.key }) {
            let status = try rawHTTP(port: port, "POST /hook HTTP/1.1\r\nHost: a\r\n\(headers)")
            XCTAssertEqual(status, "HTTP/1.1 400 Bad Request", name)
        }
        // A request the parsers agree on still goes through, and is all the application saw.
        let status = try rawHTTP(port: port, "POST /hook HTTP/1.1\r\nHost: a\r\nX-Keysat-Event: e\r\n\(end)")
        XCTAssertEqual(status, "HTTP/1.1 200 OK")
        usleep(200_000)
        let seen = try application.requests()
        XCTAssertFalse(seen.contains { $0.path.contains("admin") }, "\(seen.map(\.path))")
        XCTAssertEqual(seen.map(\.path), ["/status/200/hook"])
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").count, 1)
    }

    /// Without `--forward-invalid`, a request whose signature does not verify is answered 401
    /// and not passed on; with it, it is.
    func testInvalidSignaturesAreNotForwardedUnlessAskedFor() throws {
        let scratch = try Scratch()
        let application = try Receiver(in: scratch)
        let secret = "0123456789abcdef0123456789abcdef"
        let request =
            "POST /hook HTTP/1.1\r\nHost: a\r\nwebhook-id: msg_1\r\nwebhook-timestamp: \(Int(Date().timeIntervalSince1970))\r\n"
            + "webhook-signature: v1,AAAA\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        for (extra, status, forwarded) in [
            ([String](), "HTTP/1.1 401 Unauthorized", 0), (["--forward-invalid"], "HTTP/1.1 200 OK", 1),
        ] {
            let (process, port, out) = try startListen(
                scratch, ["--forward-to", application.url("/status/200"), "--count", "1"] + extra,
                environment: ["KEYSAT_WEBHOOK_SECRET": secret])
            defer { if process.isRunning { process.terminate() } }
            XCTAssertEqual(try rawHTTP(port: port, request), status, "\(extra)")
            process.waitUntilExit()
            XCTAssertEqual(try application.requests().count, forwarded, "\(extra)")
            XCTAssertTrue(
                try String(contentsOfFile: out, encoding: .utf8).contains("signature=INVALID"), "\(extra)")
        }
        XCTAssertEqual(try runTool("keysat-webhooks", ["listen", "--forward-invalid"]).status, 64)
    }

    /// One client sends requests without ever reading the answers; a second client is still
    /// answered at once (listen used to block in send() for everyone).
    func testAClientThatDoesNotReadCannotFreezeTheListener() throws {
        let scratch = try Scratch()
        let (process, port, _) = try startListen(scratch, [])
        defer { if process.isRunning { process.terminate() } }
        let script = """
            import socket, sys, threading, time
            port = int(sys.argv[1])
            hog = socket.socket()
            hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            hog.connect(("127.0.0.1", port))
            hog.settimeout(30)
            request = b"POST /x HTTP/1.1\\r\\nHost: a\\r\\nContent-Length: 0\\r\\n\\r\\n" * 1000
            sent = [0]
            def flood():
                try:
                    for _ in range(4000):
                        hog.sendall(request)
                        sent[0] += 1
                except OSError:
                    pass
            threading.Thread(target=flood, daemon=True).start()
            # Until the hog's sends stall: every buffer between it and listen is full.
            last, deadline = -1, time.time() + 30
            while sent[0] != last and time.time() < deadline:
                last = sent[0]
                time.sleep(1)
            started = time.time()
            other = socket.create_connection(("127.0.0.1", port), timeout=5)
            other.sendall(b"POST /y HTTP/1.1\\r\\nHost: a\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\n{}")
            try:
                line = other.recv(4096).split(b"\\r\\n")[0].decode()
            except OSError as error:
                line = "no answer: %s" % error
            print("%s in %.1f s" % (line, time.time() - started))
            """
        let result = try runTool("/usr/bin/env", ["python3", "-c", script, String(port)])
        XCTAssertTrue(result.output.hasPrefix("HTTP/1.1 204 No Content in "), result.output + result.stderr)
        XCTAssertTrue(process.isRunning)
    }

    /// Ten connections send 16 MiB heads that never end, and ten more 16 MiB bodies: listen's
    /// memory stays bounded (it took 168 MB), and it still answers.
    func testHugeUnterminatedRequestsOnManyConnectionsStayBounded() throws {
        let scratch = try Scratch()
        let (process, port, _) = try startListen(scratch, [])
        defer { if process.isRunning { process.terminate() } }
        let script = """
            import socket, sys, threading
            port = int(sys.argv[1])
            def send(prefix):
                try:
                    s = socket.create_connection(("127.0.0.1", port), timeout=20)
                    s.sendall(prefix)
                    chunk = b"a" * 65536
                    for _ in range(256):
                        s.sendall(chunk)
                except OSError:
                    pass
            threads = [threading.Thread(target=send, args=(b"POST /x HTTP/1.1\\r\\nX-Big: ",)) for _ in range(10)]
            threads += [threading.Thread(target=send, args=(b"POST /x HTTP/1.1\\r\\nContent-Length: 16777216\\r\\n\\r\\n",)) for _ in range(10)]
            for t in threads: t.start()
            for t in threads: t.join()
            """
        let result = try runTool("/usr/bin/env", ["python3", "-c", script, String(port)])
        XCTAssertEqual(result.status, 0, result.stderr)
        let status = try String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)
        let peak = try XCTUnwrap(
            status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }?.split(separator: " ").dropFirst()
                .first.flatMap { Int($0) })
        XCTAssertLessThan(peak, 64 * 1024, "peak RSS \(peak) kB")
        XCTAssertEqual(
            try rawHTTP(port: port, "POST /x HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"),
            "HTTP/1.1 204 No Content")
    }

    /// More connections than listen keeps open: the longest idle make room, and a new client
    /// is answered.
    func testIdleConnectionsBeyondTheBoundMakeRoom() throws {
        let scratch = try Scratch()
        let (process, port, _) = try startListen(scratch, [])
        defer { if process.isRunning { process.terminate() } }
        let script = """
            import socket, sys, time
            port = int(sys.argv[1])
            idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(400)]
            time.sleep(0.5)
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"POST /x HTTP/1.1\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\n{}")
            print(s.recv(4096).split(b"\\r\\n")[0].decode())
            closed = 0
            for c in idle:
                c.setblocking(False)
                try:
                    if c.recv(1) == b"":
                        closed += 1
                except BlockingIOError:
                    pass
                except OSError:
                    closed += 1
            print(closed)
            """
        let result = try runTool("/usr/bin/env", ["python3", "-c", script, String(port)])
        XCTAssertEqual(result.lines.first, "HTTP/1.1 204 No Content", result.output + result.stderr)
        XCTAssertGreaterThanOrEqual(Int(result.lines.last ?? "") ?? 0, 400 - 256, result.output)
    }

    /// An application that takes a second per request, and six deliveries at once from a run
    /// that waits three seconds: every one is forwarded and answered 2xx (forwarding was serial,
    /// so the later ones timed out after the application had processed them).
    func testASlowApplicationDoesNotMakeConcurrentDeliveriesFail() throws {
        let scratch = try Scratch()
        let application = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let (process, port, _) = try startListen(
            scratch, ["--forward-to", application.url("/slow/1000/200"), "--count", "6"])
        defer { if process.isRunning { process.terminate() } }
        try db.addEndpoint("http://127.0.0.1:\(port)/hook")
        for i in 0..<6 { _ = try db.enqueue(["license.issued", "{\"i\":\(i)}"]) }
        let result = try db.deliver(["--concurrency", "8", "--per-endpoint", "8", "--timeout", "3"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try db.count(where: "delivered_at IS NOT NULL AND last_status_code = 200"), 6)
        XCTAssertEqual(try application.requests().count, 6)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
    }
}
