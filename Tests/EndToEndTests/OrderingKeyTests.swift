import Foundation
import XCTest

/// Ordering keys (issue 23): per endpoint and key, one delivery in flight, oldest number first,
/// `X-Keysat-Sequence` 1, 2, 3 …; a failing key holds only itself; dead heads move on or hold;
/// `--order-by` derives keys from the event's data. On both backends.
final class OrderingKeyTests: XCTestCase {
    /// An endpoint at `path` on `receiver` whose deliveries are keyed by `orderBy`.
    @discardableResult
    private func keyedEndpoint(
        _ db: TestDatabase, _ receiver: Receiver, path: String, orderBy: String = "key", extra: [String] = []
    ) throws -> String {
        let id = try db.addEndpoint(on: receiver, path: path)
        let update = try runTool(
            "keysat-webhooks", ["endpoint", "update", id, "--order-by", orderBy, "--db", db.path] + extra)
        XCTAssertEqual(update.status, 0, update.stderr)
        return id
    }

    private func enqueue(_ db: TestDatabase, key: String, n: Int) throws {
        let result = try db.enqueue(["license.updated", "{\"key\":\"\(key)\",\"n\":\(n)}"])
        XCTAssertEqual(result.status, 0, result.stderr)
    }

    /// The event data's `n` and the request's sequence number, per key, in arrival order.
    private func byKey(_ requests: [Receiver.Request]) throws -> [String: [(n: Int, sequence: Int?)]] {
        var found: [String: [(n: Int, sequence: Int?)]] = [:]
        for request in requests {
            let envelope = try XCTUnwrap(JSONSerialization.jsonObject(with: request.body) as? [String: Any])
            let data = try XCTUnwrap(envelope["data"] as? [String: Any])
            let key = data["key"] as? String ?? "-"
            found[key, default: []].append(
                (data["n"] as? Int ?? -1, request.headers["x-keysat-sequence"].flatMap { Int($0) }))
        }
        return found
    }

    /// `stats --json`'s keys held back for `endpoint`, checking that the oldest waiting is
    /// given exactly when some are.
    private func heldKeys(_ db: TestDatabase, _ endpoint: String) throws -> Int {
        let stats = try runTool("keysat-webhooks", ["stats", "--json", "--db", db.path])
        XCTAssertEqual(stats.status, 0, stats.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: stats.stdout) as? [String: Any])
        let endpoints = try XCTUnwrap(object["endpoints"] as? [[String: Any]])
        let entry = try XCTUnwrap(endpoints.first { $0["id"] as? String == endpoint })
        let held = try XCTUnwrap(entry["keys_held"] as? Int)
        XCTAssertEqual(held > 0, entry["oldest_waiting"] is String, "\(entry)")
        return held
    }

    func testAFailingKeyHoldsOnlyItselfAndEachKeyArrivesInOrder() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try keyedEndpoint(db, receiver, path: "/slow/20/204")
        for n in 1...4 {
            for key in ["kA", "kB", "kC"] { try enqueue(db, key: key, n: n) }
        }
        try receiver.failKeys(["kB"])
        XCTAssertEqual(try db.deliver(["--concurrency", "8"]).status, 0)
        var keys = try byKey(try receiver.requests())
        for key in ["kA", "kC"] {
            XCTAssertEqual(keys[key]?.map(\.n), [1, 2, 3, 4], "\(key) all arrived, in order")
            XCTAssertEqual(keys[key]?.map(\.sequence), [1, 2, 3, 4], "\(key) numbered 1, 2, 3 …")
        }
        XCTAssertEqual(keys["kB"]?.map(\.n), [1], "the failing key's head only")
        XCTAssertEqual(try heldKeys(db, endpoint), 1, "stats: one key held back")
        let show = try runTool("keysat-webhooks", ["endpoint", "show", endpoint, "--db", db.path])
        XCTAssertTrue(show.output.range(of: #"keys held: +1 \("#, options: .regularExpression) != nil, show.output)
        // Due again: the head fails again, and still nothing newer of its key goes.
        try db.makeAllDue()
        XCTAssertEqual(try db.deliver(["--concurrency", "8"]).status, 0)
        keys = try byKey(try receiver.requests())
        XCTAssertEqual(keys["kB"]?.map(\.n), [1, 1])
        XCTAssertEqual(keys["kB"]?.map(\.sequence), [1, 1], "a retry carries its number")
        XCTAssertEqual(try db.count(where: "attempt_count = 0"), 3, "kB 2…4 untouched")
        // It recovers: the rest of the key, in order.
        try receiver.failKeys([])
        try db.makeAllDue()
        XCTAssertEqual(try db.deliver(["--concurrency", "8"]).status, 0)
        keys = try byKey(try receiver.requests())
        XCTAssertEqual(keys["kB"]?.map(\.n), [1, 1, 1, 2, 3, 4])
        XCTAssertEqual(keys["kB"]?.map(\.sequence), [1, 1, 1, 2, 3, 4])
        XCTAssertEqual(try db.count(where: "delivered_at IS NOT NULL"), 12)
        XCTAssertEqual(try heldKeys(db, endpoint), 0)
        XCTAssertEqual(try receiver.requests().map(\.activeSameKey).max(), 1, "never two of a key at once")
    }

    /// `deliveries show` and `deliveries list --json` say a delivery's key and number; an
    /// unordered delivery has none.
    func testDeliveriesShowTheKeyAndNumber() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try keyedEndpoint(db, receiver, path: "/status/204")
        try enqueue(db, key: "lic-7", n: 1)
        try enqueue(db, key: "lic-7", n: 2)
        XCTAssertEqual(try db.enqueue(["license.updated", #"{"n":3}"#]).status, 0)
        let second = try SQL.value(db.path, "SELECT id FROM webhook_deliveries WHERE keysat_webhooks_sequence = 2")
        let shown = try runTool("keysat-webhooks", ["deliveries", "show", second, "--db", db.path])
        XCTAssertEqual(shown.status, 0, shown.stderr)
        XCTAssertNotNil(shown.output.range(of: #"\nordering key: +lic-7 \(number 2\)\n"#, options: .regularExpression), shown.output)
        let listed = try runTool("keysat-webhooks", ["deliveries", "list", "--json", "--db", db.path])
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: listed.stdout) as? [[String: Any]])
        XCTAssertEqual(Set(rows.compactMap { $0["sequence"] as? Int }), [1, 2])
        XCTAssertEqual(rows.filter { $0["ordering_key"] is NSNull && $0["sequence"] is NSNull }.count, 1)
    }

    func testNoTwoOfOneKeyInFlightUnderConcurrency64() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try keyedEndpoint(db, receiver, path: "/slow/40/204")
        let keys = (0..<8).map { "k\($0)" }
        for n in 1...8 {
            for key in keys { try enqueue(db, key: key, n: n) }
        }
        let result = try db.deliver(["--concurrency", "64", "--per-endpoint", "64"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let requests = try receiver.requests()
        XCTAssertEqual(requests.count, 64)
        XCTAssertEqual(requests.map(\.activeSameKey).max(), 1, "one of a key in flight at a time")
        XCTAssertGreaterThan(requests.map(\.activeRequests).max() ?? 0, 2, "keys went side by side")
        for (key, seen) in try byKey(requests) {
            XCTAssertEqual(seen.map(\.n), Array(1...8), "\(key) in order")
            XCTAssertEqual(seen.map(\.sequence), Array(1...8))
        }
    }

    func testAKeyMovesOnPastADeadDeliveryAndHoldsWithOrderOnDeadHold() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        // One retry: the second failure is dead.
        try keyedEndpoint(db, receiver, path: "/status/204/move-on", extra: ["--retry-schedule", "1s"])
        try keyedEndpoint(
            db, receiver, path: "/status/204/hold", extra: ["--retry-schedule", "1s", "--order-on-dead", "hold"])
        for n in 1...3 { try enqueue(db, key: "kA", n: n) }
        try receiver.failKeys(["kA/1"])
        XCTAssertEqual(try db.deliver().status, 0)
        try db.makeAllDue()
        XCTAssertEqual(try db.deliver().status, 0)
        func sequences(_ path: String) throws -> [Int?] {
            try receiver.requests().filter { $0.path == path }.map { $0.headers["x-keysat-sequence"].flatMap { Int($0) } }
        }
        XCTAssertEqual(try sequences("/status/204/move-on"), [1, 1, 2, 3], "dead, then the key moved on")
        XCTAssertEqual(try sequences("/status/204/hold"), [1, 1], "dead, and the key holds")
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try sequences("/status/204/hold"), [1, 1], "still holding in a later run")
        // The operator retries the dead one: the key goes on, in order.
        try receiver.failKeys([])
        let dead = try SQL.value(
            db.path,
            "SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE e.url LIKE '%/hold' AND d.keysat_webhooks_sequence = 1"
        )
        XCTAssertEqual(try runTool("keysat-webhooks", ["deliveries", "retry", dead, "--db", db.path]).status, 0)
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try sequences("/status/204/hold"), [1, 1, 1, 2, 3])
    }

    func testDroppingTheDeadHeadOfAHeldKeyLetsItGoOn() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try keyedEndpoint(
            db, receiver, path: "/status/204/hold", extra: ["--retry-schedule", "1s", "--order-on-dead", "hold"])
        for n in 1...3 { try enqueue(db, key: "kA", n: n) }
        try receiver.failKeys(["kA/1"])
        XCTAssertEqual(try db.deliver().status, 0)
        try db.makeAllDue()
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try receiver.requests().count, 2)
        let dead = try SQL.value(db.path, "SELECT id FROM webhook_deliveries WHERE keysat_webhooks_sequence = 1")
        let pending = try SQL.value(db.path, "SELECT id FROM webhook_deliveries WHERE keysat_webhooks_sequence = 2")
        // Only a dead delivery can be dropped.
        let refused = try runTool("keysat-webhooks", ["deliveries", "drop", pending, "--db", db.path])
        XCTAssertEqual(refused.status, 65, refused.stderr)
        XCTAssertEqual(try db.count(), 3, "nothing dropped")
        let dropped = try runTool("keysat-webhooks", ["deliveries", "drop", dead, "--db", db.path])
        XCTAssertEqual(dropped.status, 0, dropped.stderr)
        XCTAssertEqual(try db.count(), 2)
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(
            try receiver.requests().map { $0.headers["x-keysat-sequence"] ?? "-" }, ["1", "1", "2", "3"],
            "the gap shows in the numbers")
    }

    func testOrderByANestedFieldAndAnEventWithoutItIsUnordered() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let endpoint = try keyedEndpoint(db, receiver, path: "/slow/150/204", orderBy: "license.id")
        for n in 1...3 {
            XCTAssertEqual(try db.enqueue(["license.updated", "{\"license\":{\"id\":\"L-1\"},\"n\":\(n)}"]).status, 0)
        }
        for n in 1...3 { XCTAssertEqual(try db.enqueue(["license.updated", "{\"n\":\(n)}"]).status, 0) }
        // An explicit key wins over the derived one.
        let explicit = try db.enqueue(
            ["--ordering-key", "explicit", "license.updated", "{\"license\":{\"id\":\"L-1\"},\"n\":9}"])
        XCTAssertEqual(explicit.status, 0, explicit.stderr)
        XCTAssertEqual(
            try SQL.value(
                db.path,
                "SELECT keysat_webhooks_ordering_key || ' ' || keysat_webhooks_sequence FROM webhook_deliveries WHERE id = '\(explicit.lines[0])'"
            ), "explicit 1")
        XCTAssertEqual(try db.count(where: "keysat_webhooks_ordering_key = 'L-1'"), 3)
        XCTAssertEqual(try db.count(where: "keysat_webhooks_ordering_key IS NULL"), 3, "no field: no key")
        XCTAssertEqual(try db.deliver(["--concurrency", "8"]).status, 0)
        let requests = try receiver.requests()
        let keyed = requests.filter { String(decoding: $0.body, as: UTF8.self).contains("L-1") && $0.headers["x-keysat-sequence"] != nil && !String(decoding: $0.body, as: UTF8.self).contains("\"n\":9") }
        XCTAssertEqual(keyed.map { $0.headers["x-keysat-sequence"] ?? "" }, ["1", "2", "3"])
        let keyedTimes = keyed.map(\.receivedAt)
        XCTAssertTrue(zip(keyedTimes, keyedTimes.dropFirst()).allSatisfy { $1 - $0 >= 0.14 }, "one at a time")
        let unkeyed = requests.filter { $0.headers["x-keysat-sequence"] == nil }
        XCTAssertEqual(unkeyed.count, 3)
        let spread = (unkeyed.map(\.receivedAt).max() ?? 0) - (unkeyed.map(\.receivedAt).min() ?? 0)
        XCTAssertLessThan(spread, 0.14, "the events without the field went side by side")
        let show = try runTool("keysat-webhooks", ["endpoint", "show", endpoint, "--db", db.path])
        XCTAssertTrue(show.output.contains("data.license.id"), show.output)
    }

    func testBadKeysAndPathsAreRefusedAndChangeNothing() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint()
        for key in ["", String(repeating: "k", count: 256), "a\u{1}b"] {
            let result = try db.enqueue(["--ordering-key", key, "license.updated", "{}"])
            XCTAssertEqual(result.status, 65, result.stderr)
            XCTAssertTrue(result.stderr.contains("ordering key"), result.stderr)
        }
        // Bytes that are not UTF-8 (as a shell passes $'\xff'): read as U+FFFD, they were
        // taken, and $'\xff' and $'\xfe' numbered as one key.
        for bytes in ["\\377", "\\376", "lic\\377"] {
            let result = try runTool(
                "/bin/sh",
                ["-c", "\"$1\" --db \"$2\" --ordering-key \"$(printf '\(bytes)')\" license.updated '{}'", "sh",
                 Binaries.path("keysat-enqueue"), db.path])
            XCTAssertEqual(result.status, 65, "\(bytes): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("not UTF-8"), result.stderr)
        }
        XCTAssertEqual(try db.count(), 0)
        for path in ["", "a..b", "a b", ".a", String(repeating: "a.", count: 9) + "a"] {
            let result = try runTool("keysat-webhooks", ["endpoint", "update", endpoint, "--order-by", path, "--db", db.path])
            XCTAssertEqual(result.status, 64, "\(path): \(result.stderr)")
        }
        let mode = try runTool(
            "keysat-webhooks", ["endpoint", "update", endpoint, "--order-on-dead", "wait", "--db", db.path])
        XCTAssertEqual(mode.status, 64, mode.stderr)
        XCTAssertEqual(try SQL.value(db.path, "SELECT count(*) FROM webhook_endpoints WHERE order_by IS NULL AND order_on_dead IS NULL"), "1")
        // Set, then removed with --no-order-by.
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "update", endpoint, "--order-by", "a.b", "--db", db.path]).status, 0)
        XCTAssertEqual(try SQL.value(db.path, "SELECT order_by FROM webhook_endpoints"), "a.b")
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "update", endpoint, "--no-order-by", "--db", db.path]).status, 0)
        XCTAssertEqual(try SQL.value(db.path, "SELECT count(*) FROM webhook_endpoints WHERE order_by IS NULL"), "1")
    }

    /// Numbers come from the counter, not from the rows: after a purge deleted the old ones, the
    /// next delivery of the key is numbered after them.
    func testNumbersGoOnAfterAPurge() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try keyedEndpoint(db, receiver, path: "/status/204")
        for n in 1...2 { try enqueue(db, key: "kA", n: n) }
        XCTAssertEqual(try db.deliver().status, 0)
        let purge = try runTool(
            "keysat-webhooks", ["purge", "--older-than", "0s", "--status", "delivered", "--db", db.path])
        XCTAssertEqual(purge.status, 0, purge.stderr + purge.output)
        XCTAssertEqual(try db.count(), 0)
        try enqueue(db, key: "kA", n: 3)
        XCTAssertEqual(try SQL.value(db.path, "SELECT keysat_webhooks_sequence FROM webhook_deliveries"), "3")
    }

    /// Keys are bytes: "é" as one code point and as "e" and a combining accent are two keys (as
    /// the databases compare them), and a failing one holds only itself. A run's Swift strings
    /// found them equal (canonical equivalence), so the second was taken for the first, begun
    /// already: never sent while the first came first in due order (also K and the Kelvin sign).
    func testKeysThatSwiftFindsEquivalentAreTwoKeys() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try keyedEndpoint(db, receiver, path: "/status/204")
        // JSON escapes: the data's keys are U+00E9 and U+0065 U+0301, K and U+212A.
        let keys = [#"\u00e9"#, #"e\u0301"#, "K", #"\u212a"#]
        for n in 1...2 {
            for key in keys {
                let result = try db.enqueue(["license.updated", "{\"key\":\"\(key)\",\"n\":\(n)}"])
                XCTAssertEqual(result.status, 0, result.stderr)
            }
        }
        XCTAssertEqual(try db.count(where: "keysat_webhooks_sequence = 2"), 4, "four keys, two each")
        try receiver.failKeys(["\u{E9}", "K"])
        XCTAssertEqual(try db.deliver().status, 0)
        let healthy = try receiver.requests().filter {
            let body = String(decoding: $0.body, as: UTF8.self)
            return body.contains(#"e\u0301"#) || body.contains(#"\u212a"#)
        }
        XCTAssertEqual(healthy.count, 4, "the healthy keys went, the failing ones held only themselves")
        XCTAssertEqual(healthy.map { $0.headers["x-keysat-sequence"] ?? "-" }.sorted(), ["1", "1", "2", "2"])
    }

    /// `--order-by` names a member by its bytes, as a receiver's JSON parser does: a member named
    /// with the Kelvin sign (U+212A) is not `K`, and its value was taken as the key of an event
    /// that has no `K` for the receiver.
    func testOrderByMatchesMemberNamesByTheirBytes() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try keyedEndpoint(db, receiver, path: "/status/204", orderBy: "K")
        XCTAssertEqual(try db.enqueue(["license.updated", #"{"\u212a":"kelvin"}"#]).status, 0)
        XCTAssertEqual(try db.enqueue(["license.updated", #"{"K":"ascii"}"#]).status, 0)
        XCTAssertEqual(try SQL.value(db.path, "SELECT count(*) FROM webhook_deliveries WHERE keysat_webhooks_ordering_key IS NULL"), "1")
        XCTAssertEqual(try SQL.value(db.path, "SELECT keysat_webhooks_ordering_key FROM webhook_deliveries WHERE keysat_webhooks_ordering_key IS NOT NULL"), "ascii")
    }

    /// A key another program wrote that a run cannot read back as it is stored (a blob, text
    /// with a NUL or bytes that are not UTF-8), or a number that is not an integer, orders
    /// nothing: the row goes as one without a key. It was never sent nor dead-lettered, every
    /// run, since its key's head could not be found by the key as read (SQLite only:
    /// PostgreSQL's text holds none of these).
    func testAForeignKeyThatDoesNotReadBackGoesAsUnkeyed() throws {
        try XCTSkipIf(onPostgreSQL, "PostgreSQL's text holds no NUL, no bytes that are not UTF-8, no blob")
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try keyedEndpoint(db, receiver, path: "/status/204")
        for n in 1...5 { try enqueue(db, key: "k\(n)", n: n) }
        try SQL.execute(
            db.path,
            """
            UPDATE webhook_deliveries SET keysat_webhooks_ordering_key = CASE keysat_webhooks_ordering_key
                WHEN 'k1' THEN CAST(X'6B00' AS TEXT) WHEN 'k2' THEN X'6B' WHEN 'k3' THEN CAST(X'6BFF' AS TEXT)
                ELSE keysat_webhooks_ordering_key END;
            UPDATE webhook_deliveries SET keysat_webhooks_sequence = 'one' WHERE keysat_webhooks_ordering_key = 'k4';
            UPDATE webhook_deliveries SET keysat_webhooks_sequence = 1.5 WHERE keysat_webhooks_ordering_key = 'k5';
            """)
        let run = try db.deliver()
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try db.count(where: "delivered_at IS NOT NULL"), 5, "each sent once")
        let requests = try receiver.requests()
        XCTAssertEqual(requests.count, 5)
        XCTAssertEqual(requests.compactMap { $0.headers["x-keysat-sequence"] }, [], "no number made up")
    }

    /// A key's counter another program set to what no number can follow (the largest integer,
    /// below 0; on SQLite text) is refused (65), nothing written: SQLite gave the largest
    /// number again and again and went on from 1 after text (numbers given twice), PostgreSQL
    /// failed with an overflow it did not explain.
    func testADamagedKeyCounterIsRefusedAndNothingIsWritten() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint()
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "update", endpoint, "--order-by", "key", "--db", db.path]).status,
            0)
        try enqueue(db, key: "kA", n: 1)
        let before = try SQL.dump(db.path)
        for value in ["9223372036854775807", "-1"] + (onPostgreSQL ? [] : ["'abc'"]) {
            try SQL.execute(db.path, "UPDATE keysat_webhooks_key_sequences SET last = \(value)")
            let result = try db.enqueue(["--ordering-key", "kA", "license.updated", "{\"n\":2}"])
            XCTAssertEqual(result.status, 65, "\(value): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("sequence counter of ordering key 'kA'"), result.stderr)
            XCTAssertEqual(try db.count(), 1, "\(value): nothing written")
        }
        try SQL.execute(db.path, "UPDATE keysat_webhooks_key_sequences SET last = 1")
        XCTAssertEqual(try SQL.dump(db.path), before, "refusals changed nothing")
        try enqueue(db, key: "kA", n: 2)
        XCTAssertEqual(try db.count(where: "keysat_webhooks_sequence = 2"), 1, "repaired, it goes on")
    }

    /// PostgreSQL: two runs at once on one keyed endpoint (runs on several hosts share the
    /// queue) keep, per key, one delivery in flight across both, oldest first; every delivery
    /// goes once, and the runs share the keys.
    func testTwoRunsAtOnceKeepOnePerKeyInFlightOldestFirst() throws {
        try XCTSkipUnless(onPostgreSQL, "runs overlap on PostgreSQL only (SQLite's runs take a lock)")
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try keyedEndpoint(db, receiver, path: "/slow/30/204")
        let keys = (0..<6).map { "k\($0)" }
        for n in 1...6 {
            for key in keys { try enqueue(db, key: key, n: n) }
        }
        let runs = try (0..<2).map { _ in
            try db.startDeliver(["--concurrency", "16", "--per-endpoint", "16", "--max-runtime", "30"])
        }
        for run in runs { run.waitUntilExit() }
        XCTAssertEqual(runs.map(\.terminationStatus), [0, 0])
        // A key a run found held by the other is left to it for the round: later runs finish it.
        for _ in 0..<10 where try db.count(where: "delivered_at IS NULL") > 0 {
            XCTAssertEqual(try db.deliver(["--concurrency", "16", "--per-endpoint", "16"]).status, 0)
        }
        let requests = try receiver.requests()
        XCTAssertEqual(requests.count, 36, "each delivery once")
        XCTAssertEqual(requests.map(\.activeSameKey).max(), 1, "one of a key in flight across both runs")
        for (key, seen) in try byKey(requests) {
            XCTAssertEqual(seen.map(\.n), Array(1...6), "\(key) oldest first")
            XCTAssertEqual(seen.map(\.sequence), Array(1...6))
        }
        XCTAssertEqual(try db.count(where: "delivered_at IS NOT NULL"), 36)
    }

    /// Enqueues of one key at once (processes racing, as hosts do on PostgreSQL) get the
    /// numbers 1…N, each once, in the order their rows were written.
    func testConcurrentEnqueuesOfOneKeyNumberOneToN() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint()
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "update", endpoint, "--order-by", "key", "--db", db.path]).status,
            0)
        let script = """
            for i in $(seq 1 16); do "$1" --db "$2" --ordering-key kA license.updated "{\\"n\\":$i}" > /dev/null || echo fail & done; wait
            """
        let result = try runTool("/bin/sh", ["-c", script, "sh", Binaries.path("keysat-enqueue"), db.path])
        XCTAssertEqual(result.output, "", result.stderr)
        let written = onPostgreSQL ? "seq" : "rowid"
        let numbers = try SQL.value(
            db.path,
            onPostgreSQL
                ? "SELECT string_agg(keysat_webhooks_sequence::text, ',' ORDER BY seq) FROM webhook_deliveries"
                : "SELECT group_concat(keysat_webhooks_sequence, ',') FROM (SELECT keysat_webhooks_sequence FROM webhook_deliveries ORDER BY \(written))"
        )
        XCTAssertEqual(numbers, (1...16).map(String.init).joined(separator: ","))
        XCTAssertEqual(
            try SQL.value(db.path, "SELECT last FROM keysat_webhooks_key_sequences WHERE ordering_key = 'kA'"), "16")
    }
}
