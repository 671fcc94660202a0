import Foundation
import XCTest

final class DeliverTests: XCTestCase {
    // MARK: - The request

    func testSendsASignedPostWithTheExactBodyAndRecordsDelivery() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/204")
        let id = try XCTUnwrap(
            db.enqueue(["license.issued", #"{"big": 12345678901234567890, "p": 1.10, "s": "é😀\n"}"#]).lines
                .first)

        let result = try db.deliver()
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.output, "", "a good run prints nothing")
        XCTAssertEqual(result.stderr, "", "a good run prints nothing")

        let requests = try receiver.requests()
        XCTAssertEqual(requests.count, 1)
        let request = try XCTUnwrap(requests.first)
        let row = try db.row(id)
        XCTAssertEqual(request.body, Data((row["payload_json"] as? String ?? "").utf8))
        XCTAssertEqual(request.signatureOK, true, "Python's hmac must accept X-Keysat-Signature")
        XCTAssertEqual(request.headers["content-type"], "application/json")
        XCTAssertEqual(request.headers["x-keysat-event"], "license.issued")
        XCTAssertEqual(request.headers["x-keysat-delivery"], id)
        XCTAssertTrue(
            request.headers["user-agent"]?.hasPrefix("keysat-webhooks/") == true, "\(request.headers)")
        XCTAssertNotNil(
            request.headers["x-keysat-signature"]?.range(
                of: "^sha256=[0-9a-f]{64}$", options: .regularExpression))

        XCTAssertEqual(row["attempt_count"] as? Int, 1)
        XCTAssertEqual(row["last_status_code"] as? Int, 204)
        XCTAssertTrue(row["next_attempt_at"] is NSNull)
        XCTAssertTrue(row["last_error"] is NSNull)
        XCTAssertTrue(row["delivered_at"] is String)
        // A second run has nothing to do.
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try receiver.requests().count, 1)
    }

    func testSignatureFailsForAWrongSecret() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/200")
        try receiver.expectSecret("not-the-secret", forPath: "/status/200")
        _ = try db.enqueue(["e", "{}"])
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try receiver.requests().first?.signatureOK, false)
    }

    // MARK: - Outcomes

    func testEachKindOfFailureIsRecordedAndRescheduled() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let cases: [(path: String, status: Int?, error: String?)] = [
            ("/status/404", 404, "non-2xx response: receiver says 404: eeee"),
            ("/status/503", 503, "non-2xx response: receiver says 503: eeee"),
            ("/redirect", 302, "non-2xx response: "),
            ("/big/500", 500, "non-2xx response: xxxx"),
            ("/hang", nil, "request error: "),
            ("/cut/502", 502, "non-2xx response: "),
        ]
        var ids: [String: String] = [:]
        for item in cases {
            try db.addEndpoint(
                on: receiver, path: item.path,
                events: ["only." + item.path.replacingOccurrences(of: "/", with: "_")])
            ids[item.path] = try XCTUnwrap(
                db.enqueue(["only." + item.path.replacingOccurrences(of: "/", with: "_"), "{}"]).lines.first)
        }
        // A port nobody listens on: the connection is refused.
        try db.addEndpoint("http://127.0.0.1:1/refused", events: ["only.refused"])
        let refused = try XCTUnwrap(db.enqueue(["only.refused", "{}"]).lines.first)

        let result = try db.deliver(["--timeout", "1"])
        XCTAssertEqual(result.status, 0, "a failing receiver is not an error of the tool: \(result.stderr)")
        XCTAssertEqual(result.stderr, "", "retries are silent")
        for item in cases {
            let row = try db.row(ids[item.path]!)
            XCTAssertEqual(row["attempt_count"] as? Int, 1, item.path)
            XCTAssertEqual(row["last_status_code"] as? Int, item.status, item.path)
            XCTAssertTrue(row["delivered_at"] is NSNull, item.path)
            let error = row["last_error"] as? String ?? ""
            XCTAssertTrue(error.hasPrefix(item.error!), "\(item.path): \(error)")
            XCTAssertLessThanOrEqual(error.count, "non-2xx response: ".count + 200, item.path)
            // Rescheduled 5 seconds after the failed attempt.
            let attempt = try XCTUnwrap(
                SQL.rows(
                    db.path,
                    "SELECT started_at, duration_ms FROM webhook_delivery_attempts WHERE delivery_id = '\(ids[item.path]!)'"
                ).first)
            let end =
                try epochSeconds(attempt["started_at"]) + Double(attempt["duration_ms"] as? Int ?? 0) / 1000
            XCTAssertEqual(try epochSeconds(row["next_attempt_at"]) - end, 5, accuracy: 0.1, item.path)
        }
        let hang = try db.row(ids["/hang"]!)
        XCTAssertTrue((hang["last_error"] as? String ?? "").contains("imed out"), "\(hang)")
        let refusedRow = try db.row(refused)
        XCTAssertTrue(
            (refusedRow["last_error"] as? String ?? "").hasPrefix("request error: "), "\(refusedRow)")
        XCTAssertTrue(refusedRow["last_status_code"] is NSNull)
        XCTAssertFalse(
            try receiver.requests().contains { $0.path == "/redirect-target" }, "redirects are never followed"
        )
    }

    func testTwoHundredWithALargeOrBrokenBodyIsDelivered() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/big/200", events: ["big"])
        try db.addEndpoint(on: receiver, path: "/cut/201", events: ["cut"])
        let big = try XCTUnwrap(db.enqueue(["big", "1"]).lines.first)
        let cut = try XCTUnwrap(db.enqueue(["cut", "1"]).lines.first)
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try db.row(big)["last_status_code"] as? Int, 200)
        XCTAssertTrue(try db.row(big)["delivered_at"] is String)
        XCTAssertEqual(try db.row(cut)["last_status_code"] as? Int, 201)
        XCTAssertTrue(try db.row(cut)["delivered_at"] is String)
        let excerpt = try SQL.value(
            db.path,
            "SELECT length(response_body) FROM webhook_delivery_attempts WHERE delivery_id = '\(big)'")
        XCTAssertEqual(excerpt, "1024", "the history keeps the first KiB of the response")
    }

    func testTheFullBackoffLadderEndsInOneDeadLetterWarning() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/500")
        let id = try XCTUnwrap(db.enqueue(["license.revoked", "{}"]).lines.first)
        let ladder: [Double] = [5, 10, 30, 60, 300, 900, 1800, 3600, 7200]
        for attempt in 1...10 {
            let result = try db.deliver()
            XCTAssertEqual(result.status, 0)
            let row = try db.row(id)
            XCTAssertEqual(row["attempt_count"] as? Int, attempt)
            let history = try XCTUnwrap(
                SQL.rows(
                    db.path,
                    "SELECT started_at, duration_ms FROM webhook_delivery_attempts WHERE delivery_id = '\(id)' AND attempt_number = \(attempt)"
                ).first)
            if attempt < 10 {
                XCTAssertEqual(result.stderr, "", "attempt \(attempt): scheduled retries are silent")
                let end =
                    try epochSeconds(history["started_at"]) + Double(history["duration_ms"] as? Int ?? 0)
                    / 1000
                XCTAssertEqual(
                    try epochSeconds(row["next_attempt_at"]) - end, ladder[attempt - 1], accuracy: 0.1,
                    "attempt \(attempt)")
                // Not due yet: another run does not send it.
                XCTAssertEqual(try db.deliver().status, 0)
                XCTAssertEqual(try receiver.requests().count, attempt)
                try db.makeAllDue()
            } else {
                XCTAssertTrue(row["next_attempt_at"] is NSNull)
                XCTAssertTrue(row["delivered_at"] is NSNull)
                let lines = result.stderr.split(separator: "\n")
                XCTAssertEqual(lines.count, 1, result.stderr)
                XCTAssertTrue(
                    lines.first?.hasPrefix("keysat-deliver: warning: delivery dead-lettered") == true,
                    result.stderr)
                XCTAssertTrue(result.stderr.contains(id))
            }
        }
        XCTAssertEqual(try db.count("webhook_delivery_attempts"), 10)
        try db.makeAllDue()
        XCTAssertEqual(try db.deliver().stderr, "", "a dead delivery is never attempted again")
        XCTAssertEqual(try receiver.requests().count, 10)
    }

    func testDisabledAndDeletedEndpointsAreDeadLetteredWithoutARequest() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let disabled = try db.addEndpoint(on: receiver, path: "/status/204/a")
        let deleted = try db.addEndpoint(on: receiver, path: "/status/204/b")
        let ids = try db.enqueue(["e", "{}"]).lines
        XCTAssertEqual(ids.count, 2)
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "disable", disabled, "--db", db.path]).status, 0)
        // Keysat's own code may delete an endpoint row under the deliveries (foreign keys off).
        try SQL.executeWithoutForeignKeys(db.path, "DELETE FROM webhook_endpoints WHERE id = '\(deleted)'")
        let result = try db.deliver()
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 2, result.stderr)
        XCTAssertEqual(try receiver.requests().count, 0)
        for id in ids {
            let row = try db.row(id)
            XCTAssertEqual(row["last_error"] as? String, "endpoint deleted or disabled")
            XCTAssertEqual(row["attempt_count"] as? Int, 1)
            XCTAssertTrue(row["next_attempt_at"] is NSNull)
        }
    }

    // MARK: - Runs, locks and crashes

    func testTwoRunsStartedTogetherSendEachDeliveryOnce() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/slow/5/204")
        for i in 0..<200 { _ = try db.enqueue(["e", "\(i)"]) }
        let script = "\"$1\" --db \"$2\" & \"$1\" --db \"$2\" & wait"
        let result = try runTool("/bin/sh", ["-c", script, "sh", Binaries.path("keysat-deliver"), db.path])
        XCTAssertEqual(result.status, 0, result.stderr)
        let seen = try receiver.requests().map(\.deliveryID)
        XCTAssertEqual(seen.count, 200)
        XCTAssertEqual(Set(seen).count, 200)
        XCTAssertEqual(try db.count(where: "delivered_at IS NOT NULL"), 200)
    }

    func testAHeldLockMeansExitZeroAtOnceOrSeventyFiveAfterWaiting() throws {
        try requireSQLite("the run lock file beside the database, held with flock")
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/204")
        _ = try db.enqueue(["e", "1"])
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        holder.arguments = [db.path + ".deliver.lock", "sleep", "30"]
        try holder.run()
        defer { holder.terminate() }
        usleep(300_000)
        let quiet = try db.deliver()
        XCTAssertEqual(quiet.status, 0)
        XCTAssertEqual(quiet.stderr, "")
        let verbose = try db.deliver(["-v"])
        XCTAssertEqual(verbose.status, 0)
        XCTAssertTrue(verbose.stderr.contains("another run holds"), verbose.stderr)
        let waited = try db.deliver(["--wait", "0.5"])
        XCTAssertEqual(waited.status, 75, waited.stderr)
        XCTAssertTrue(waited.stderr.hasPrefix("keysat-deliver: error: "), waited.stderr)
        XCTAssertEqual(try receiver.requests().count, 0)
        // A custom lock file is another lock.
        XCTAssertEqual(try db.deliver(["--lock-file", scratch.file("other.lock")]).status, 0)
        XCTAssertEqual(try receiver.requests().count, 1)
        let mode =
            try FileManager.default.attributesOfItem(atPath: scratch.file("other.lock"))[.posixPermissions]
            as? Int
        XCTAssertEqual(mode, 0o600)
    }

    func testARunKilledMidwayLosesNothing() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/slow/20/204")
        var ids: Set<String> = []
        for i in 0..<150 { ids.formUnion(try db.enqueue(["e", "\(i)"]).lines) }
        let run = try db.startDeliver(["--concurrency", "4"])
        usleep(400_000)
        kill(run.processIdentifier, SIGKILL)
        run.waitUntilExit()
        XCTAssertEqual(run.terminationReason, .uncaughtSignal)
        let sentBeforeKill = try receiver.requests().count
        XCTAssertGreaterThan(sentBeforeKill, 0)
        XCTAssertLessThan(sentBeforeKill, 150, "the kill must land mid-run")
        XCTAssertEqual(try SQL.integrityCheck(db.path), "ok")
        // The lock died with the process (on PostgreSQL its claims end with their leases, here
        // at once, standing for the lease's time passing); a normal run finishes the job.
        try SQL.endLeases(db.path)
        let after = try db.deliver()
        XCTAssertEqual(after.status, 0, after.stderr)
        XCTAssertEqual(try db.count(where: "delivered_at IS NOT NULL"), 150)
        XCTAssertEqual(
            Set(try receiver.requests().map(\.deliveryID)), ids, "every delivery reached the receiver")
    }

    func testAHangingEndpointDoesNotHoldUpTheOthers() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/hang", events: ["slow"])
        try db.addEndpoint(on: receiver, path: "/status/204", events: ["fast"])
        for i in 0..<3 { _ = try db.enqueue(["slow", "\(i)"]) }
        for i in 0..<60 { _ = try db.enqueue(["fast", "\(i)"]) }
        let result = try db.deliver(["--timeout", "3", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
            .compactMapValues { $0 as? Int }
        XCTAssertEqual(summary["attempted"], 63)
        XCTAssertEqual(summary["delivered"], 60)
        XCTAssertEqual(summary["retry_scheduled"], 3)
        // Every fast delivery finished well before the hanging ones gave up.
        let lastFast = try epochSeconds(
            try SQL.value(
                db.path, "SELECT max(delivered_at) FROM webhook_deliveries WHERE event_type = 'fast'"))
        let firstSlowStart = try epochSeconds(
            try SQL.value(
                db.path,
                "SELECT min(a.started_at) FROM webhook_delivery_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.event_type = 'slow'"
            ))
        XCTAssertLessThan(lastFast - firstSlowStart, 2.0)
        let slowDurations = try SQL.rows(
            db.path,
            "SELECT a.duration_ms FROM webhook_delivery_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.event_type = 'slow'"
        )
        for row in slowDurations {
            XCTAssertEqual(
                Double(row["duration_ms"] as? Int ?? 0), 3000, accuracy: 500,
                "a hanging attempt ends at its timeout")
        }
    }

    func testDryRunListsAndChangesNothing() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint(on: receiver, path: "/status/204")
        let ids =
            try db.enqueue(["license.issued", "{}"]).lines + db.enqueue(["license.revoked", "{}"]).lines
        let before = try SQL.dump(db.path)
        let result = try db.deliver(["--dry-run"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(
            result.lines,
            [
                "\(ids[0]) \(endpoint) license.issued 1 \(receiver.url("/status/204"))",
                "\(ids[1]) \(endpoint) license.revoked 1 \(receiver.url("/status/204"))",
            ])
        XCTAssertEqual(try SQL.dump(db.path), before)
        XCTAssertEqual(try receiver.requests().count, 0)
        XCTAssertEqual(try db.deliver(["--dry-run", "--limit", "1"]).lines.count, 1)
    }

    func testLimitAndSummaries() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/200")
        for i in 0..<5 { _ = try db.enqueue(["e", "\(i)"]) }
        let limited = try db.deliver(["--limit", "2", "--json", "-v"])
        XCTAssertEqual(limited.status, 0)
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: limited.stdout) as? [String: Any])
            .compactMapValues { $0 as? Int }
        XCTAssertEqual(summary["attempted"], 2)
        XCTAssertEqual(summary["delivered"], 2)
        XCTAssertNotNil(summary["elapsed_ms"])
        XCTAssertTrue(limited.stderr.contains("attempted=2 delivered=2"), limited.stderr)
        XCTAssertEqual(try db.count(where: "delivered_at IS NULL"), 3)
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try db.count(where: "delivered_at IS NULL"), 0)
    }

    func testBadOptionsAndMissingDatabase() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        for arguments in [
            ["--concurrency", "0"], ["--timeout", "soon"], ["--limit", "-1"], ["--wait", "x"],
            ["--frobnicate"], ["extra"],
        ] {
            let result = try db.deliver(arguments)
            XCTAssertEqual(result.status, 64, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.hasPrefix("keysat-deliver: error: "), result.stderr)
        }
        let missing = try runTool("keysat-deliver", ["--db", scratch.absentDatabase()])
        assertMissingDatabaseAdvice(missing)
        // The run lock is SQLite's (PostgreSQL's runs claim rows instead).
        if onPostgreSQL { return }
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.file("absent.db.deliver.lock")))
        let badLock = try db.deliver(["--lock-file", scratch.file("no/such/dir/x.lock")])
        XCTAssertEqual(badLock.status, 73, badLock.stderr)
    }
}
