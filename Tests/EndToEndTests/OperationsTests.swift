import Foundation
import XCTest

/// The operator's commands: inspection, recovery, purge, statistics, metrics, logs.
final class OperationsTests: XCTestCase {
    private func webhooks(_ db: TestDatabase, _ arguments: [String]) throws -> ProcessResult {
        try runTool("keysat-webhooks", arguments + ["--db", db.path])
    }

    // MARK: - endpoint update

    func testEndpointUpdate() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let id = try db.addEndpoint("http://127.0.0.1:9/a", events: ["license.issued"])
        let result = try webhooks(
            db,
            [
                "endpoint", "update", id, "--url", "https://example.com/b", "--event", "x.y", "--event", "z",
                "--description", "new",
            ])
        XCTAssertEqual(result.status, 0, result.stderr)
        let row = try XCTUnwrap(SQL.rows(db.path, "SELECT * FROM webhook_endpoints").first)
        XCTAssertEqual(row["url"] as? String, "https://example.com/b")
        XCTAssertEqual(row["event_types"] as? String, #"["x.y","z"]"#)
        XCTAssertEqual(row["description"] as? String, "new")
        XCTAssertNotEqual(row["updated_at"] as? String, row["created_at"] as? String)
        let before = try SQL.dump(db.path)
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", id, "--url", "ftp://x"]).status, 65)
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", id, "--event", "bad event"]).status, 65)
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", "nope", "--description", "x"]).status, 65)
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", id]).status, 64)
        XCTAssertEqual(try SQL.dump(db.path), before)
    }

    // MARK: - deliveries list / show

    func testDeliveriesListFiltersAndJSON() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let a = try db.addEndpoint(events: ["a"])
        let b = try db.addEndpoint(events: ["b"])
        let ids =
            (0..<3).flatMap { try! db.enqueue(["a", "\($0)"]).lines } + (try db.enqueue(["b", "{}"]).lines)
        try SQL.execute(
            db.path,
            """
            UPDATE webhook_deliveries SET delivered_at = created_at, next_attempt_at = NULL, attempt_count = 1 WHERE id = '\(ids[0])';
            UPDATE webhook_deliveries SET next_attempt_at = NULL, attempt_count = 10, last_error = 'x' WHERE id = '\(ids[1])';
            UPDATE webhook_deliveries SET next_attempt_at = '2999-01-01T00:00:00.000000+00:00' WHERE id = '\(ids[2])';
            UPDATE webhook_deliveries SET created_at = '2020-01-01T00:00:00.000000+00:00' WHERE id = '\(ids[3])';
            """)
        func listed(_ arguments: [String]) throws -> [String] {
            let result = try webhooks(db, ["deliveries", "list", "--json"] + arguments)
            XCTAssertEqual(result.status, 0, result.stderr)
            let array = try XCTUnwrap(JSONSerialization.jsonObject(with: result.stdout) as? [[String: Any]])
            return array.compactMap { $0["id"] as? String }
        }
        XCTAssertEqual(Set(try listed([])), Set(ids))
        XCTAssertEqual(try listed(["--status", "delivered"]), [ids[0]])
        XCTAssertEqual(try listed(["--status", "dead"]), [ids[1]])
        XCTAssertEqual(Set(try listed(["--status", "pending"])), [ids[2], ids[3]])
        XCTAssertEqual(try listed(["--status", "due"]), [ids[3]])
        XCTAssertEqual(try listed(["--endpoint", b]), [ids[3]])
        XCTAssertEqual(Set(try listed(["--endpoint", a, "--event", "a"])), Set(ids[0..<3]))
        XCTAssertEqual(try listed(["--until", "2021-01-01"]), [ids[3]])
        XCTAssertEqual(Set(try listed(["--since", "1h"])), Set(ids[0..<3]))
        XCTAssertEqual(try listed(["--limit", "1"]).count, 1)
        XCTAssertEqual(try listed([]).last, ids[3], "newest first")
        let object = try XCTUnwrap(
            (JSONSerialization.jsonObject(
                with: webhooks(db, ["deliveries", "list", "--json", "--status", "dead"]).stdout)
                as? [[String: Any]])?.first)
        for column in [
            "id", "endpoint_id", "event_type", "payload", "attempt_count", "next_attempt_at",
            "last_status_code", "last_error", "delivered_at", "created_at",
        ] {
            XCTAssertNotNil(object[column], column)
        }
        // The payload is a JSON value (the envelope as sent), as in deliveries show --json.
        XCTAssertNotNil(object["payload"] as? [String: Any])
        let table = try webhooks(db, ["deliveries", "list"])
        XCTAssertEqual(table.lines.count, 5)
        XCTAssertTrue(table.lines[0].hasPrefix("ID "))
        for bad in [["--status", "gone"], ["--since", "yesterday"], ["--limit", "0"]] {
            let result = try webhooks(db, ["deliveries", "list"] + bad)
            XCTAssertEqual(result.status, 64, "\(bad)")
            XCTAssertTrue(result.stderr.hasPrefix("keysat-webhooks: error: "), result.stderr)
        }
    }

    func testDeliveriesShowPrettyPrintsAndListsAttemptsAsTheReceiverSawThem() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/503")
        let id = try XCTUnwrap(db.enqueue(["e", #"{"n":12345678901234567890,"p":1.10,"a":[]}"#]).lines.first)
        for _ in 0..<3 {
            XCTAssertEqual(try db.deliver().status, 0)
            try db.makeAllDue()
        }
        let show = try webhooks(db, ["deliveries", "show", id])
        XCTAssertEqual(show.status, 0, show.stderr)
        XCTAssertTrue(
            show.output.contains("    \"n\": 12345678901234567890,\n    \"p\": 1.10,\n    \"a\": []"),
            show.output)
        // The history matches what the receiver saw: three attempts, each answered 503.
        XCTAssertEqual(try receiver.requests().count, 3)
        let json = try XCTUnwrap(
            JSONSerialization.jsonObject(with: webhooks(db, ["deliveries", "show", id, "--json"]).stdout)
                as? [String: Any])
        let attempts = try XCTUnwrap(json["attempts"] as? [[String: Any]])
        XCTAssertEqual(attempts.map { $0["attempt_number"] as? Int }, [1, 2, 3])
        XCTAssertEqual(attempts.map { $0["status_code"] as? Int }, [503, 503, 503])
        XCTAssertTrue((attempts[0]["response_body"] as? String ?? "").hasPrefix("receiver says 503"))
        XCTAssertEqual((json["payload"] as? [String: Any])?["event_type"] as? String, "e")
        XCTAssertEqual(try webhooks(db, ["deliveries", "show", "missing"]).status, 65)
    }

    // MARK: - retry

    func testRetryByIdAndForce() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()
        let ids = try db.enqueue(["e", "1"]).lines + db.enqueue(["e", "2"]).lines
        try SQL.execute(
            db.path,
            """
            UPDATE webhook_deliveries SET next_attempt_at = NULL, attempt_count = 10, last_error = 'boom', last_status_code = 500 WHERE id = '\(ids[0])';
            UPDATE webhook_deliveries SET delivered_at = created_at, next_attempt_at = NULL, attempt_count = 1, last_status_code = 200 WHERE id = '\(ids[1])';
            """)
        let before = try SQL.dump(db.path)
        let refused = try webhooks(db, ["deliveries", "retry", ids[0], ids[1]])
        XCTAssertEqual(refused.status, 65)
        XCTAssertTrue(refused.stderr.contains("--force"), refused.stderr)
        XCTAssertEqual(try webhooks(db, ["deliveries", "retry", ids[0], "missing"]).status, 65)
        XCTAssertEqual(try SQL.dump(db.path), before, "a refused retry changes nothing")
        let one = try webhooks(db, ["deliveries", "retry", ids[0]])
        XCTAssertEqual(one.status, 0, one.stderr)
        XCTAssertEqual(one.output, "re-queued 1 delivery\n")
        let row = try db.row(ids[0])
        XCTAssertEqual(row["attempt_count"] as? Int, 0)
        XCTAssertTrue(row["last_error"] is NSNull)
        XCTAssertTrue(row["last_status_code"] is NSNull)
        XCTAssertLessThan(abs(try epochSeconds(row["next_attempt_at"]) - Date().timeIntervalSince1970), 5)
        XCTAssertEqual(
            try webhooks(db, ["deliveries", "retry", ids[1], "--force"]).output, "re-queued 1 delivery\n")
        XCTAssertTrue(try db.row(ids[1])["delivered_at"] is NSNull)
        for bad in [["--dead", ids[0]], [], ["--endpoint", "x", ids[0]]] {
            XCTAssertEqual(try webhooks(db, ["deliveries", "retry"] + bad).status, 64, "\(bad)")
        }
    }

    func testRetryDeadRequeuesExactlyTheDeadOnesInScope() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let a = try db.addEndpoint(events: ["e"])
        let b = try db.addEndpoint(events: ["e"])
        for i in 0..<3 { _ = try db.enqueue(["e", "\(i)"]) }
        // All dead; one of them old; plus one delivered and one pending.
        try SQL.execute(
            db.path,
            """
            UPDATE webhook_deliveries SET next_attempt_at = NULL, attempt_count = 10, last_error = 'x';
            UPDATE webhook_deliveries SET created_at = '2020-01-01T00:00:00.000000+00:00'
              WHERE id = (SELECT id FROM webhook_deliveries WHERE endpoint_id = '\(a)' ORDER BY id LIMIT 1);
            """)
        let pending = try XCTUnwrap(db.enqueue(["e", "\"p\""]).lines.first)
        let delivered = try XCTUnwrap(db.enqueue(["e", "\"d\""]).lines.first)
        try SQL.execute(
            db.path,
            "UPDATE webhook_deliveries SET delivered_at = created_at, next_attempt_at = NULL, attempt_count = 1 WHERE id = '\(delivered)'"
        )
        let scoped = try webhooks(db, ["deliveries", "retry", "--dead", "--endpoint", a, "--since", "7d"])
        XCTAssertEqual(scoped.status, 0, scoped.stderr)
        XCTAssertEqual(scoped.output, "re-queued 2 deliveries\n")
        XCTAssertEqual(
            try db.count(
                where:
                    "endpoint_id = '\(a)' AND attempt_count = 0 AND next_attempt_at IS NOT NULL AND created_at > '2021-01-01T00:00:00.000000+00:00'"
            ), 3, "2 re-queued, plus its pending one")
        XCTAssertEqual(
            try db.count(where: "endpoint_id = '\(a)' AND attempt_count = 10"), 1,
            "the old one is out of scope")
        XCTAssertEqual(
            try db.count(where: "endpoint_id = '\(b)' AND attempt_count = 10"), 3,
            "another endpoint is out of scope")
        XCTAssertEqual(try db.row(pending)["attempt_count"] as? Int, 0)
        XCTAssertTrue(try db.row(delivered)["delivered_at"] is String, "delivered ones are not dead")
        let all = try webhooks(db, ["deliveries", "retry", "--dead"])
        XCTAssertEqual(all.output, "re-queued 4 deliveries\n")
        XCTAssertEqual(try db.count(where: "attempt_count = 10"), 0)
        XCTAssertEqual(try webhooks(db, ["deliveries", "retry", "--dead", "--since", "never"]).status, 64)
    }

    // MARK: - purge

    func testPurgeNeverDeletesPendingAndLeavesAConsistentDatabase() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/204")
        for i in 0..<30 { _ = try db.enqueue(["e", "\(i)"]) }
        XCTAssertEqual(try db.deliver().status, 0)
        for i in 0..<5 { _ = try db.enqueue(["e", "\"p\(i)\""]) }
        // Everything looks old, the pending ones too; three delivered ones are dead instead.
        try SQL.execute(
            db.path,
            """
            UPDATE webhook_deliveries SET created_at = '2020-01-01T00:00:00.000000+00:00';
            UPDATE webhook_deliveries SET delivered_at = '2020-01-02T00:00:00.000000+00:00' WHERE delivered_at IS NOT NULL;
            UPDATE webhook_deliveries SET delivered_at = NULL, attempt_count = 10
              WHERE id IN (SELECT id FROM webhook_deliveries WHERE delivered_at IS NOT NULL LIMIT 3);
            """)
        let before = try SQL.dump(db.path)
        let dry = try webhooks(db, ["purge", "--older-than", "30d", "--dry-run"])
        XCTAssertEqual(dry.output, "would delete 30 deliveries and 30 attempts\n")
        XCTAssertEqual(try SQL.dump(db.path), before)
        let dead = try webhooks(db, ["purge", "--older-than", "30d", "--status", "dead"])
        XCTAssertEqual(dead.output, "deleted 3 deliveries and 3 attempts\n")
        let rest = try webhooks(db, ["purge", "--older-than", "30d"])
        XCTAssertEqual(rest.status, 0, rest.stderr)
        XCTAssertEqual(rest.output, "deleted 27 deliveries and 27 attempts\n")
        XCTAssertEqual(try db.count(), 5)
        XCTAssertEqual(
            try db.count(where: "next_attempt_at IS NOT NULL AND delivered_at IS NULL"), 5,
            "pending rows stay")
        XCTAssertEqual(try db.count("webhook_delivery_attempts"), 0)
        XCTAssertEqual(try SQL.integrityCheck(db.path), "ok")
        XCTAssertEqual(try SQL.foreignKeyCheck(db.path), "")
        XCTAssertEqual(
            try webhooks(db, ["purge", "--older-than", "1d"]).output, "deleted 0 deliveries and 0 attempts\n")
        for bad in [["--older-than", "soon"], [], ["--older-than", "1d", "--status", "pending"]] {
            XCTAssertEqual(try webhooks(db, ["purge"] + bad).status, 64, "\(bad)")
        }
    }

    // MARK: - stats and metrics

    func testStatsAndMetricsMatchTheDatabase() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let good = try db.addEndpoint(on: receiver, path: "/status/200", events: ["good"])
        let bad = try db.addEndpoint(on: receiver, path: "/status/500", events: ["bad"])
        for i in 0..<4 { _ = try db.enqueue(["good", "\(i)"]) }
        for i in 0..<2 { _ = try db.enqueue(["bad", "\(i)"]) }
        let metrics = scratch.file("keysat.prom")
        XCTAssertEqual(try db.deliver(["--metrics-file", metrics]).status, 0)
        try db.makeAllDue()
        XCTAssertEqual(try db.deliver(["--metrics-file", metrics]).status, 0)
        let stats = try XCTUnwrap(
            JSONSerialization.jsonObject(with: webhooks(db, ["stats", "--json"]).stdout) as? [String: Any])
        XCTAssertEqual(stats["pending"] as? Int, 2)
        XCTAssertEqual(stats["delivered"] as? Int, 4)
        XCTAssertEqual(stats["dead"] as? Int, 0)
        XCTAssertEqual(stats["due"] as? Int, 0)
        let endpoints = try XCTUnwrap(stats["endpoints"] as? [[String: Any]])
        let goodStats = try XCTUnwrap(endpoints.first { $0["id"] as? String == good })
        let badStats = try XCTUnwrap(endpoints.first { $0["id"] as? String == bad })
        XCTAssertEqual(goodStats["delivered_24h"] as? Int, 4)
        XCTAssertEqual(goodStats["success_rate_24h"] as? Double, 1.0)
        XCTAssertEqual(badStats["success_rate_24h"] as? Double, 0.0)
        XCTAssertEqual(badStats["failure_streak"] as? Int, 4)
        XCTAssertEqual(badStats["pending"] as? Int, 2)
        XCTAssertTrue(badStats["last_success"] is NSNull)
        XCTAssertTrue(badStats["last_failure"] is String)
        XCTAssertEqual(try webhooks(db, ["stats"]).status, 0)

        // A real Prometheus parser reads the file, and its numbers match the database.
        let parser = """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            out = {}
            for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                for s in family.samples:
                    key = s.name + ("{" + ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) + "}" if s.labels else "")
                    out[key] = s.value
            print(json.dumps(out))
            """
        let parsed = try runTool("/usr/bin/env", ["python3", "-c", parser, metrics])
        XCTAssertEqual(parsed.status, 0, parsed.stderr)
        let samples = try XCTUnwrap(JSONSerialization.jsonObject(with: parsed.stdout) as? [String: Double])
        XCTAssertEqual(samples["keysat_webhooks_queue_deliveries{state=pending}"], 2)
        XCTAssertEqual(samples["keysat_webhooks_queue_deliveries{state=dead}"], 0)
        XCTAssertEqual(samples["keysat_webhooks_queue_deliveries{state=due}"], 0)
        XCTAssertEqual(samples["keysat_webhooks_last_run_deliveries{outcome=retry_scheduled}"], 2)
        XCTAssertEqual(samples["keysat_webhooks_last_run_deliveries{outcome=delivered}"], 0)
        XCTAssertEqual(samples["keysat_webhooks_last_run_deliveries{outcome=dead_lettered}"], 0)
        XCTAssertEqual(samples["keysat_webhooks_last_run_deliveries{outcome=skipped}"], 0)
        XCTAssertEqual(samples["keysat_webhooks_endpoint_deliveries{endpoint=\(bad),state=pending}"], 2)
        XCTAssertEqual(samples["keysat_webhooks_oldest_due_age_seconds"], 0)
        let lastRun = try XCTUnwrap(samples["keysat_webhooks_last_run_timestamp_seconds"])
        XCTAssertEqual(lastRun, Date().timeIntervalSince1970, accuracy: 60)
        XCTAssertEqual(samples["keysat_webhooks_last_success_timestamp_seconds"], lastRun)
        XCTAssertNotNil(samples["keysat_webhooks_last_run_duration_seconds"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: metrics + ".tmp.\(0)"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter {
            $0.contains(".tmp.")
        }
        XCTAssertEqual(leftovers, [], "the temporary file is renamed into place")
    }

    // MARK: - logs

    func testLogsNeverCarrySecretsAndSpeakJournaldWhenAsked() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/500")
        try db.addEndpoint("http://127.0.0.1:1/refused")
        let secrets = try SQL.rows(db.path, "SELECT secret FROM webhook_endpoints").compactMap {
            $0["secret"] as? String
        }
        _ = try db.enqueue(["e", "{}"])
        try SQL.execute(db.path, "UPDATE webhook_deliveries SET attempt_count = 9")
        let result = try runTool(
            "keysat-deliver", ["--db", db.path, "--log-level", "debug", "-v"],
            environment: ["JOURNAL_STREAM": "8:12345"])
        XCTAssertEqual(result.status, 0)
        let lines = result.stderr.split(separator: "\n")
        XCTAssertGreaterThanOrEqual(lines.count, 5, result.stderr)
        XCTAssertTrue(lines.contains { $0.hasPrefix("<7>keysat-deliver: debug: attempt ") })
        XCTAssertEqual(
            lines.filter { $0.hasPrefix("<4>keysat-deliver: warning: delivery dead-lettered ") }.count, 2)
        XCTAssertTrue(lines.contains { $0.hasPrefix("<6>keysat-deliver: info: run finished ") })
        var everything = result.stderr
        for arguments in [
            ["endpoint", "list"], ["endpoint", "list", "--json"], ["stats", "--json"],
            ["deliveries", "list", "--json"],
            ["endpoint", "show", try SQL.value(db.path, "SELECT id FROM webhook_endpoints LIMIT 1")],
        ] {
            everything += try webhooks(db, arguments).output
        }
        for secret in secrets {
            XCTAssertFalse(everything.contains(secret), "a secret leaked")
            XCTAssertFalse(everything.contains(String(secret.prefix(16))), "part of a secret leaked")
        }
        let quiet = try runTool("keysat-deliver", ["--db", db.path, "--log-level", "error"])
        XCTAssertEqual(quiet.stderr, "")
        XCTAssertEqual(try runTool("keysat-deliver", ["--db", db.path, "--log-level", "loud"]).status, 64)
    }
}
