import Foundation
import XCTest

final class EndpointCommandTests: XCTestCase {
    func testAddPrintsIdAndSecretAndCreatesThePrivateDatabase() throws {
        let scratch = try Scratch()
        let path = try scratch.database("new.db")
        let result = try runTool(
            "keysat-webhooks",
            [
                "endpoint", "add", "https://example.com/hooks", "--event", "license.issued", "--description",
                "CRM", "--db", path,
            ])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.lines.count, 3)
        let id = try XCTUnwrap(result.lines.first?.replacingOccurrences(of: "id: ", with: ""))
        let secret = try XCTUnwrap(
            result.lines.dropFirst().first?.replacingOccurrences(of: "secret: ", with: ""))
        // The Standard Webhooks form: whsec_ and the base64 of the secret's text.
        XCTAssertEqual(result.lines.last, "whsec: whsec_" + Data(secret.utf8).base64EncodedString())
        XCTAssertNotNil(
            id.range(
                of: #"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"#,
                options: .regularExpression), id)
        XCTAssertNotNil(secret.range(of: #"^[0-9a-f]{64}$"#, options: .regularExpression), secret)
        let row = try XCTUnwrap(SQL.rows(path, "SELECT * FROM webhook_endpoints").first)
        XCTAssertEqual(row["id"] as? String, id)
        XCTAssertEqual(row["secret"] as? String, secret)
        XCTAssertEqual(row["event_types"] as? String, #"["license.issued"]"#)
        XCTAssertEqual(row["description"] as? String, "CRM")
        XCTAssertEqual(row["active"] as? Int, 1)
        if onPostgreSQL { return }  // a file's mode
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
    }

    func testSecretFromFileOrStandardInputNeverFromArguments() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let secretFile = try scratch.write("secret", "my-shared-secret-0123456789\n", mode: 0o600)
        let fromFile = try runTool(
            "keysat-webhooks",
            ["endpoint", "add", "http://h.example/a", "--secret-file", secretFile, "--db", db.path, "--json"])
        XCTAssertEqual(fromFile.status, 0, fromFile.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: fromFile.stdout) as? [String: Any])
        XCTAssertEqual(object["secret"] as? String, "my-shared-secret-0123456789")
        let fromStdin = try runTool(
            "keysat-webhooks",
            ["endpoint", "add", "http://h.example/b", "--secret-file", "-", "--db", db.path],
            stdin: Data("another-secret-abcdefgh".utf8))
        XCTAssertEqual(fromStdin.status, 0, fromStdin.stderr)
        XCTAssertTrue(fromStdin.output.contains("secret: another-secret-abcdefgh"))
        let noSecretOption = try runTool(
            "keysat-webhooks", ["endpoint", "add", "http://h.example/c", "--secret", "abc", "--db", db.path])
        XCTAssertEqual(noSecretOption.status, 64)
        let before = try SQL.dump(db.path)
        let short = try runTool(
            "keysat-webhooks",
            ["endpoint", "add", "http://h.example/d", "--secret-file", "-", "--db", db.path],
            stdin: Data("short".utf8))
        XCTAssertEqual(short.status, 65)
        XCTAssertFalse(short.stderr.contains("short"), "the secret must not be echoed")
        XCTAssertEqual(try SQL.dump(db.path), before)
    }

    func testBadURLsAreRefusedAndCreateNothing() throws {
        let scratch = try Scratch()
        let path = try scratch.database("none.db")
        for url in [
            "ftp://example.com/x", "example.com/hook", "/relative", "http://", "https:///path",
            "http://user:pw@example.com/", "http://exa mple.com/", "http://example.com:99999/",
            "http://example.com:/", "mailto:ops@example.com", "http://[::1/",
        ] {
            let result = try runTool("keysat-webhooks", ["endpoint", "add", url, "--db", path])
            XCTAssertEqual(result.status, 65, "\(url): \(result.stderr)")
            XCTAssertTrue(result.stderr.hasPrefix("keysat-webhooks: error: "), result.stderr)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        let badEvent = try runTool(
            "keysat-webhooks",
            ["endpoint", "add", "http://ok.example/", "--event", "bad event", "--db", path])
        XCTAssertEqual(badEvent.status, 65)
        for url in ["http://127.0.0.1:8088/hook", "https://[::1]:8443/x?y=1", "HTTPS://Example.COM"] {
            XCTAssertEqual(
                try runTool("keysat-webhooks", ["endpoint", "add", url, "--db", path]).status, 0, url)
        }
    }

    func testListMasksSecretsAndShowRevealsOnlyWhenAsked() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let id = try db.addEndpoint("http://127.0.0.1:9/one", events: ["license.issued"])
        let secret = try SQL.value(db.path, "SELECT secret FROM webhook_endpoints")
        let list = try runTool("keysat-webhooks", ["endpoint", "list", "--db", db.path])
        XCTAssertEqual(list.status, 0)
        XCTAssertTrue(list.output.contains(id.prefix(8)))
        XCTAssertFalse(list.output.contains(id), "a short id by default")
        XCTAssertTrue(
            try runTool("keysat-webhooks", ["endpoint", "list", "--wide", "--db", db.path]).output.contains(
                id))
        XCTAssertFalse(list.output.contains(secret))
        let listJSON = try runTool("keysat-webhooks", ["--db", db.path, "endpoint", "list", "--json"])
        XCTAssertFalse(listJSON.output.contains(secret))
        let array = try XCTUnwrap(JSONSerialization.jsonObject(with: listJSON.stdout) as? [[String: Any]])
        XCTAssertEqual(array.first?["url"] as? String, "http://127.0.0.1:9/one")
        let show = try runTool("keysat-webhooks", ["endpoint", "show", id, "--db", db.path])
        XCTAssertEqual(show.status, 0)
        XCTAssertFalse(show.output.contains(secret))
        let reveal = try runTool(
            "keysat-webhooks", ["endpoint", "show", id, "--show-secret", "--db", db.path])
        XCTAssertTrue(reveal.output.contains(secret))
        let unknown = try runTool("keysat-webhooks", ["endpoint", "show", "nope", "--db", db.path])
        XCTAssertEqual(unknown.status, 65)
        XCTAssertTrue(unknown.stderr.contains("no endpoint with id"), unknown.stderr)
    }

    func testDisableEnableControlsFanOut() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let id = try db.addEndpoint()
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "disable", id, "--db", db.path]).status, 0)
        XCTAssertEqual(try db.enqueue(["e", "1"]).output, "")
        XCTAssertEqual(try runTool("keysat-webhooks", ["endpoint", "enable", id, "--db", db.path]).status, 0)
        XCTAssertEqual(try db.enqueue(["e", "1"]).lines.count, 1)
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "disable", "missing", "--db", db.path]).status, 65)
    }

    func testRemoveRefusesWithPendingDeliveriesUnlessForced() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let id = try db.addEndpoint()
        let other = try db.addEndpoint()
        _ = try db.enqueue(["e", "1"])
        _ = try db.enqueue(["e", "2"])
        let before = try SQL.dump(db.path)
        let refused = try runTool("keysat-webhooks", ["endpoint", "remove", id, "--db", db.path])
        XCTAssertEqual(refused.status, 65)
        XCTAssertTrue(refused.stderr.contains("2 pending deliveries"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("disable"), refused.stderr)
        XCTAssertEqual(try SQL.dump(db.path), before)
        let forced = try runTool("keysat-webhooks", ["endpoint", "remove", id, "--force", "--db", db.path])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        XCTAssertTrue(forced.output.contains("2 deliveries"), forced.output)
        XCTAssertEqual(try db.count("webhook_endpoints"), 1)
        XCTAssertEqual(try db.count(), 2)
        XCTAssertEqual(try db.count(where: "endpoint_id = '\(other)'"), 2)
        // With only finished deliveries, no --force is needed.
        try SQL.execute(
            db.path, "UPDATE webhook_deliveries SET delivered_at = created_at, next_attempt_at = NULL")
        let finished = try runTool("keysat-webhooks", ["endpoint", "remove", other, "--db", db.path])
        XCTAssertEqual(finished.status, 0, finished.stderr)
        XCTAssertEqual(try db.count(), 0)
    }

    func testMissingDatabaseAndUsageErrors() throws {
        let scratch = try Scratch()
        let path = try scratch.absentDatabase()
        for arguments in [
            ["endpoint", "list"], ["endpoint", "show", "x"], ["endpoint", "disable", "x"],
            ["endpoint", "remove", "x"],
        ] {
            let result = try runTool("keysat-webhooks", arguments + ["--db", path])
            assertMissingDatabaseAdvice(result)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        let unknown = try runTool("keysat-webhooks", ["endpoint", "frobnicate"])
        XCTAssertEqual(unknown.status, 64)
        XCTAssertTrue(unknown.stderr.hasPrefix("keysat-webhooks: error: "), unknown.stderr)
        if !onPostgreSQL {  // a file in a folder that is not there
            let cannotCreate = try runTool("keysat-webhooks", ["init", "--db", scratch.file("no/such/dir/k.db")])
            XCTAssertEqual(cannotCreate.status, 73, cannotCreate.stderr)
        }
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["--version"]).output,
            try runTool("keysat-enqueue", ["--version"]).output)
    }

    func testInitIsIdempotentAndConcurrent() throws {
        let scratch = try Scratch()
        let path = try scratch.database("k.db")
        let script = "for i in 1 2 3 4 5 6; do \"$1\" init --db \"$2\" > /dev/null || echo fail & done; wait"
        let result = try runTool("/bin/sh", ["-c", script, "sh", Binaries.path("keysat-webhooks"), path])
        XCTAssertEqual(result.output, "", result.stderr)
        // Every step applied exactly once.
        let steps = onPostgreSQL ? Array(1...8) : Array(1...19)
        XCTAssertEqual(
            try SQL.value(
                path,
                onPostgreSQL
                    ? "SELECT string_agg(version::text, ',' ORDER BY version) FROM keysat_webhooks_schema"
                    : "SELECT group_concat(version, ',') FROM (SELECT version FROM keysat_webhooks_schema ORDER BY version)"
            ),
            steps.map(String.init).joined(separator: ","))
        if !onPostgreSQL { XCTAssertEqual(try SQL.value(path, "PRAGMA journal_mode"), "wal") }
        let again = try runTool("keysat-webhooks", ["init", "--db", path])
        XCTAssertEqual(again.output, path + "\n")
    }
}
