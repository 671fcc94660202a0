import Foundation
import XCTest

/// Per-endpoint custom headers (issue 22), through the programs, on either backend
/// (KEYSAT_TEST_BACKEND): they arrive on every attempt, cannot replace what this project signs
/// or sets, never show in listings, logs or JSON, and a stored value another program wrote
/// that a run may not send stops the endpoint rather than going out without them.
final class CustomHeaderTests: XCTestCase {
    private func webhooks(_ db: TestDatabase, _ arguments: [String]) throws -> ProcessResult {
        try runTool("keysat-webhooks", arguments + ["--db", db.path])
    }

    func testHeadersArriveOnEveryAttemptBesideTheSignedOnesAndFromFiles() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint(on: receiver, path: "/status/500")
        let token = try scratch.write("token", "Bearer s3cr3t-t0ken\n", mode: 0o600)
        let update = try webhooks(
            db, ["endpoint", "update", endpoint, "--header", "X-Tenant:  42 ", "--header-file", "Authorization=\(token)"])
        XCTAssertEqual(update.status, 0, update.stderr)
        let id = try XCTUnwrap(db.enqueue(["license.issued", "{\"a\":1}"]).lines.first)
        XCTAssertEqual(try db.deliver().status, 0)
        try db.makeAllDue()
        XCTAssertEqual(try db.deliver().status, 0)
        let requests = try receiver.requests()
        XCTAssertEqual(requests.count, 2)
        for request in requests {
            XCTAssertEqual(request.headers["x-tenant"], "42")
            XCTAssertEqual(request.headers["authorization"], "Bearer s3cr3t-t0ken")
            XCTAssertEqual(request.headers["x-keysat-delivery"], id)
            XCTAssertEqual(request.headers["content-type"], "application/json")
            XCTAssertEqual(request.signatureOK, true, "the signature covers the body as before")
        }
        // endpoint test sends them too.
        let test = try webhooks(db, ["endpoint", "test", endpoint, "--allow-network", "127.0.0.1"])
        XCTAssertEqual(try receiver.requests().count, 3, test.stderr)
        XCTAssertEqual(try receiver.requests().last?.headers["authorization"], "Bearer s3cr3t-t0ken")
    }

    func testHeadersThisProjectSetsOrHTTPFramesWithAreRefusedAndNothingChanges() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint()
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", endpoint, "--header", "X-Kept: 1"]).status, 0)
        let before = try SQL.value(db.path, "SELECT custom_headers FROM webhook_endpoints")
        XCTAssertEqual(before, #"["X-Kept: 1"]"#)
        let empty = try scratch.write("empty", "", mode: 0o600)
        for arguments in [
            ["--header", "Content-Type: text/plain"], ["--header", "content-length: 5"], ["--header", "Host: evil.example"],
            ["--header", "User-Agent: me"], ["--header", "webhook-id: forged"], ["--header", "Webhook-Signature: v1,x"],
            ["--header", "X-Keysat-Signature: sha256=00"], ["--header", "Transfer-Encoding: chunked"],
            ["--header", "Connection: close"], ["--header", "Bad Name: x"], ["--header", "X-Split: a\r\nX-Injected: b"],
            ["--header", "NoColonAtAll"], ["--header", "X-Empty:   "],
            ["--header", "X-A: 1", "--header", "x-a: 2"], ["--header-file", "Authorization"],
            ["--header-file", "=\(empty)"], ["--header-file", "X-Empty=\(empty)"],
            ["--header", "X-Long: " + String(repeating: "v", count: 4097)],
            ["--remove-header", "X-Not-There"],
        ] {
            let result = try webhooks(db, ["endpoint", "update", endpoint] + arguments)
            let shown = arguments.map { $0.prefix(80) }
            XCTAssertEqual(result.status, 64, "\(shown): \(result.stderr)")
            XCTAssertTrue(result.stderr.hasPrefix("keysat-webhooks: error: "), result.stderr)
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
            XCTAssertEqual(try SQL.value(db.path, "SELECT custom_headers FROM webhook_endpoints"), before, "\(shown)")
        }
        let missing = try webhooks(db, ["endpoint", "update", endpoint, "--header-file", "X-A=\(scratch.file("absent"))"])
        XCTAssertEqual(missing.status, 66, missing.stderr)
        let tooMany = (0...20).flatMap { ["--header", "X-H\($0): v"] }
        XCTAssertEqual(try webhooks(db, ["endpoint", "add", "http://127.0.0.1:9/many"] + tooMany).status, 64)
        XCTAssertEqual(try db.count("webhook_endpoints"), 1)
        // Replace one, add one, remove one; names keep their case, compared without it.
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", endpoint, "--header", "x-kept: 2", "--header", "X-New: 3"]).status, 0)
        XCTAssertEqual(try SQL.value(db.path, "SELECT custom_headers FROM webhook_endpoints"), #"["x-kept: 2","X-New: 3"]"#)
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", endpoint, "--remove-header", "X-KEPT"]).status, 0)
        XCTAssertEqual(try SQL.value(db.path, "SELECT custom_headers FROM webhook_endpoints"), #"["X-New: 3"]"#)
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", endpoint, "--remove-header", "x-new"]).status, 0)
        XCTAssertEqual(try SQL.value(db.path, "SELECT count(*) FROM webhook_endpoints WHERE custom_headers IS NULL"), "1")
    }

    func testValuesNeverShowInListingsLogsOrJSONUnlessTheSecretIsAskedFor() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint(on: receiver, path: "/status/500")
        let token = try scratch.write("token", "Bearer v4lue-n0t-t0-sh0w", mode: 0o600)
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", endpoint, "--header-file", "Authorization=\(token)"]).status, 0)
        let id = try XCTUnwrap(db.enqueue(["license.issued", "{}"]).lines.first)
        var seen = try db.deliver(["--log-level", "debug"]).stderr
        for arguments in [
            ["endpoint", "show", endpoint], ["endpoint", "show", endpoint, "--json"], ["endpoint", "list"],
            ["endpoint", "list", "--json"], ["deliveries", "show", id], ["deliveries", "show", id, "--json"],
            ["deliveries", "list", "--json"], ["stats", "--json"],
            ["endpoint", "update", endpoint, "--description", "x", "--json"],
        ] {
            let result = try webhooks(db, arguments)
            XCTAssertEqual(result.status, 0, "\(arguments): \(result.stderr)")
            seen += result.output + result.stderr
        }
        XCTAssertFalse(seen.contains("v4lue-n0t-t0-sh0w"), seen)
        XCTAssertTrue(seen.contains("Authorization"), "the name is shown")
        let shown = try webhooks(db, ["endpoint", "show", endpoint, "--show-secret"])
        XCTAssertTrue(shown.output.contains("Authorization: Bearer v4lue-n0t-t0-sh0w"), shown.output)
    }

    /// Headers another program wrote that a run may not send (a reserved name, not JSON): the
    /// endpoint is not sent to — its deliveries stay due — it is said once per run, `endpoint
    /// test` refuses it, and setting the headers again repairs it.
    func testUnsendableStoredHeadersHoldTheEndpointUntilRepaired() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint(on: receiver, path: "/status/204")
        let other = try db.addEndpoint(on: receiver, path: "/status/200")
        for stored in [#"["Host: evil.example"]"#, "Authorization: Bearer x", #"{"X-Ok": "1"}"#] {
            try SQL.execute(db.path, "UPDATE webhook_endpoints SET custom_headers = '\(stored)' WHERE id = '\(endpoint)'")
            _ = try db.enqueue(["license.issued", "{}"])
        }
        let result = try db.deliver()
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("endpoint settings cannot be read"), result.stderr)
        XCTAssertFalse(result.stderr.contains("Bearer x"), "a stored value is not printed")
        XCTAssertEqual(try receiver.requests().map(\.path), Array(repeating: "/status/200", count: 3), "only the other endpoint")
        XCTAssertEqual(try db.count(where: "endpoint_id = '\(endpoint)' AND next_attempt_at IS NOT NULL AND attempt_count = 0"), 3)
        XCTAssertEqual(try webhooks(db, ["endpoint", "test", endpoint, "--allow-network", "127.0.0.1"]).status, 65)
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", endpoint, "--header", "X-Ok: 2"]).status, 0)
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try receiver.requests().filter { $0.path == "/status/204" }.count, 3)
        XCTAssertTrue(try receiver.requests().filter { $0.path == "/status/204" }.allSatisfy { $0.headers["x-ok"] == "2" })
        _ = other
    }
}
