import Foundation
import XCTest

/// Per-endpoint client certificates (mutual TLS, issue 22), through the programs, on either
/// backend: a receiver that refuses clients without a certificate its CA signed accepts the
/// configured one; the files are checked when given and by each run, which holds the
/// endpoint's deliveries (due, said once) rather than sending without them.
final class ClientCertificateTests: XCTestCase {
    /// A server CA and certificate for 127.0.0.1, a client CA with a client certificate, and a
    /// stranger's self-signed certificate, made with the openssl command.
    private func certificates(in scratch: Scratch) throws {
        let script = """
            set -e
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=server-ca -keyout ca.key -out ca.pem 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.pem 2>/dev/null
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=client-ca -keyout client-ca.key -out client-ca.pem 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -subj /CN=keysat-deliver -keyout client.key -out client.csr 2>/dev/null
            openssl x509 -req -in client.csr -CA client-ca.pem -CAkey client-ca.key -CAcreateserial -days 2 -out client.pem 2>/dev/null
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=stranger -keyout stranger.key -out stranger.pem 2>/dev/null
            chmod 600 client.key stranger.key
            """
        let made = try runTool("/bin/sh", ["-c", "cd '\(scratch.path)' && \(script)"])
        XCTAssertEqual(made.status, 0, made.stderr)
    }

    func testAReceiverDemandingAClientCertificateAcceptsTheConfiguredOneOnly() throws {
        let scratch = try Scratch()
        try certificates(in: scratch)
        let receiver = try Receiver(
            in: scratch, tls: (scratch.file("server.pem"), scratch.file("server.key")),
            clientCA: scratch.file("client-ca.pem"))
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint(on: receiver, path: "/status/204")
        let id = try XCTUnwrap(db.enqueue(["license.issued", "{}"]).lines.first)
        let trust = ["--ca-file", scratch.file("ca.pem")]
        XCTAssertEqual(try db.deliver(trust).status, 0)
        XCTAssertTrue((try db.row(id)["last_error"] as? String ?? "").hasPrefix("request error:"), "refused without a certificate")
        XCTAssertEqual(try receiver.requests().count, 0)

        // A certificate its CA did not sign: refused too.
        let update = { (arguments: [String]) in
            try runTool("keysat-webhooks", ["endpoint", "update", endpoint] + arguments + ["--db", db.path])
        }
        XCTAssertEqual(try update(["--client-cert", scratch.file("stranger.pem"), "--client-key", scratch.file("stranger.key")]).status, 0)
        try db.makeAllDue()
        XCTAssertEqual(try db.deliver(trust).status, 0)
        XCTAssertEqual(try receiver.requests().count, 0)

        // The configured one, given relative to the working folder: stored absolute.
        let relative = try runTool(
            "/bin/sh",
            ["-c", "cd '\(scratch.path)' && '\(Binaries.path("keysat-webhooks"))' endpoint update \(endpoint) --client-cert client.pem --client-key ./client.key --db '\(db.path)'"])
        XCTAssertEqual(relative.status, 0, relative.stderr)
        XCTAssertEqual(try SQL.value(db.path, "SELECT client_cert FROM webhook_endpoints"), scratch.file("client.pem"))
        XCTAssertEqual(try SQL.value(db.path, "SELECT client_key FROM webhook_endpoints"), scratch.path + "/./client.key")
        try db.makeAllDue()
        let delivered = try db.deliver(trust)
        XCTAssertEqual(delivered.status, 0, delivered.stderr)
        XCTAssertTrue(try db.row(id)["delivered_at"] is String, "delivered with the client certificate")
        XCTAssertEqual(try receiver.requests().count, 1)
        XCTAssertEqual(try receiver.requests().first?.signatureOK, true)
        let json = try runTool("keysat-webhooks", ["endpoint", "show", endpoint, "--json", "--db", db.path])
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: json.stdout) as? [String: Any])
        XCTAssertEqual(object["client_cert"] as? String, scratch.file("client.pem"))

        // Files gone since: the run holds the endpoint (due, said once), sends nothing.
        let second = try XCTUnwrap(db.enqueue(["license.issued", "{\"n\":2}"]).lines.first)
        try FileManager.default.moveItem(atPath: scratch.file("client.key"), toPath: scratch.file("client.key.moved"))
        let held = try db.deliver(trust)
        XCTAssertEqual(held.status, 0, held.stderr)
        XCTAssertEqual(held.stderr.split(separator: "\n").count, 1, held.stderr)
        XCTAssertTrue(held.stderr.contains("client certificate cannot be used"), held.stderr)
        XCTAssertEqual(try db.row(second)["attempt_count"] as? Int, 0, "still due, not attempted")
        try FileManager.default.moveItem(atPath: scratch.file("client.key.moved"), toPath: scratch.file("client.key"))
        XCTAssertEqual(try db.deliver(trust).status, 0)
        XCTAssertTrue(try db.row(second)["delivered_at"] is String)

        XCTAssertEqual(try update(["--no-client-cert"]).status, 0)
        XCTAssertEqual(try SQL.value(db.path, "SELECT count(*) FROM webhook_endpoints WHERE client_cert IS NULL AND client_key IS NULL"), "1")
    }

    func testBadCertificateFilesAreRefusedWhenGivenAndNothingChanges() throws {
        let scratch = try Scratch()
        try certificates(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint()
        let readable = try scratch.write("readable.key", String(contentsOfFile: scratch.file("client.key"), encoding: .utf8), mode: 0o644)
        let notPEM = try scratch.write("not.pem", "hello\n", mode: 0o600)
        for (arguments, status) in [
            (["--client-cert", scratch.file("client.pem")], Int32(64)),
            (["--client-key", scratch.file("client.key")], 64),
            (["--client-cert", scratch.file("absent.pem"), "--client-key", scratch.file("client.key")], 66),
            (["--client-cert", scratch.file("client.pem"), "--client-key", readable], 77),
            (["--client-cert", notPEM, "--client-key", scratch.file("client.key")], 65),
            (["--client-cert", scratch.path, "--client-key", scratch.file("client.key")], 66),
            (["--no-client-cert", "--client-cert", scratch.file("client.pem"), "--client-key", scratch.file("client.key")], 64),
        ] {
            let result = try runTool("keysat-webhooks", ["endpoint", "update", endpoint] + arguments + ["--db", db.path])
            XCTAssertEqual(result.status, status, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.hasPrefix("keysat-webhooks: error: "), result.stderr)
            let add = try runTool("keysat-webhooks", ["endpoint", "add", "http://127.0.0.1:9/b"] + arguments + ["--db", db.path])
            XCTAssertNotEqual(add.status, 0, "\(arguments)")
        }
        XCTAssertEqual(try db.count("webhook_endpoints"), 1)
        XCTAssertEqual(try SQL.value(db.path, "SELECT count(*) FROM webhook_endpoints WHERE client_cert IS NULL AND client_key IS NULL"), "1")
    }
}
