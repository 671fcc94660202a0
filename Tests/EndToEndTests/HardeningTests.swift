import Foundation
import XCTest

/// Network policy, TLS, auto-disable, secret hygiene and faults of the environment.
final class HardeningTests: XCTestCase {
    private var isRoot: Bool { getuid() == 0 }

    private func rows(_ file: String) throws -> [String: [String: Any]] {
        let array = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file)))
                as? [[String: Any]])
        return Dictionary(uniqueKeysWithValues: array.map { ($0["description"] as? String ?? "", $0) })
    }

    // MARK: - Network policy

    func testLoopbackMetadataAndRebindingAreRefusedUnlessAllowed() throws {
        guard isRoot, (try? runTool("/usr/bin/unshare", ["--mount", "--net", "true"]))?.status == 0 else {
            throw XCTSkip("needs root and network namespaces")
        }
        let scratch = try Scratch()
        let fixtures = Binaries.packageRoot.appendingPathComponent("Tests/EndToEndTests/Fixtures").path
        let result = try runTool(
            "/usr/bin/unshare",
            [
                "--mount", "--net", fixtures + "/ssrf_scenario.sh", scratch.path, Binaries.directory.path,
                fixtures,
            ],
            environment: ["KEYSAT_ALLOW_NETWORKS": ""])
        XCTAssertEqual(result.status, 0, result.stderr + result.output)

        // endpoint add warns when the name resolves into a refused range (not for the public answer).
        let loopWarning = try String(contentsOfFile: scratch.file("add-loop.err"), encoding: .utf8)
        XCTAssertTrue(loopWarning.contains("warning: loop.keysat.test resolves to 127.0.0.1"), loopWarning)
        XCTAssertTrue(loopWarning.contains("--allow-network 127.0.0.1"), loopWarning)
        let metadataWarning = try String(contentsOfFile: scratch.file("add-metadata.err"), encoding: .utf8)
        XCTAssertTrue(metadataWarning.contains("169.254.169.254"), metadataWarning)
        XCTAssertEqual(try String(contentsOfFile: scratch.file("add-rebind.err"), encoding: .utf8), "")

        // By default all three are refused, each for the address it actually resolved to.
        let refusal = "request error: destination %@ is not allowed by the network policy"
        let byDefault = try rows(scratch.file("default.json"))
        XCTAssertEqual(byDefault["loop"]?["last_error"] as? String, String(format: refusal, "127.0.0.1"))
        XCTAssertEqual(
            byDefault["metadata"]?["last_error"] as? String, String(format: refusal, "169.254.169.254"))
        XCTAssertEqual(
            byDefault["rebind"]?["last_error"] as? String, String(format: refusal, "127.0.0.1"),
            "the rebound answer is checked at connect time")
        // --allow-private-networks opens loopback but not the metadata service.
        let privateRun = try rows(scratch.file("private.json"))
        XCTAssertTrue(privateRun["loop"]?["delivered_at"] is String)
        XCTAssertEqual(
            privateRun["metadata"]?["last_error"] as? String, String(format: refusal, "169.254.169.254"))
        // Naming the network opens it.
        let metadataRun = try rows(scratch.file("metadata.json"))
        XCTAssertTrue(metadataRun["metadata"]?["delivered_at"] is String)
        let paths = try String(contentsOfFile: scratch.file("receiver/requests.jsonl"), encoding: .utf8)
        XCTAssertTrue(paths.contains("/status/204/loop"))
        XCTAssertTrue(paths.contains("/status/204/metadata"))
        XCTAssertFalse(paths.contains("/status/204/rebind"), "the rebinding name never reached the receiver")
    }

    func testAllowNetworkValuesAreChecked() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        for bad in ["10.0.0.0/33", "example.com", "1.2.3.4/x", "::1/129"] {
            let result = try db.deliver(["--allow-network", bad])
            XCTAssertEqual(result.status, 64, "\(bad): \(result.stderr)")
        }
        let environment = try runTool(
            "keysat-deliver", ["--db", db.path],
            environment: ["KEYSAT_ALLOW_NETWORKS": "10.0.0.0/8, nonsense"])
        XCTAssertEqual(environment.status, 64, environment.stderr)
        XCTAssertTrue(environment.stderr.contains("nonsense"), environment.stderr)
    }

    func testLoopbackIsRefusedByDefaultWithoutANamespace() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/204")
        let id = try XCTUnwrap(db.enqueue(["e", "1"]).lines.first)
        let refused = try runTool(
            "keysat-deliver", ["--db", db.path], environment: ["KEYSAT_ALLOW_NETWORKS": ""])
        XCTAssertEqual(refused.status, 0, refused.stderr)
        XCTAssertEqual(
            try db.row(id)["last_error"] as? String,
            "request error: destination 127.0.0.1 is not allowed by the network policy")
        XCTAssertEqual(try receiver.requests().count, 0)
        try db.makeAllDue()
        let allowed = try runTool(
            "keysat-deliver", ["--db", db.path, "--allow-network", "127.0.0.0/8"],
            environment: ["KEYSAT_ALLOW_NETWORKS": ""])
        XCTAssertEqual(allowed.status, 0, allowed.stderr)
        XCTAssertTrue(try db.row(id)["delivered_at"] is String)
    }

    // MARK: - TLS

    func testTLSPeersAreVerifiedAgainstTheSystemOrTheGivenCA() throws {
        let scratch = try Scratch()
        // A private CA and a certificate for 127.0.0.1, made with the openssl command.
        let script = """
            set -e
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=keysat-test-ca -keyout ca.key -out ca.pem 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.pem 2>/dev/null
            """
        let made = try runTool("/bin/sh", ["-c", "cd '\(scratch.path)' && \(script)"])
        XCTAssertEqual(made.status, 0, made.stderr)
        let receiver = try Receiver(
            in: scratch, tls: (scratch.file("server.pem"), scratch.file("server.key")))
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/204")
        let id = try XCTUnwrap(db.enqueue(["e", "1"]).lines.first)
        XCTAssertEqual(try db.deliver().status, 0)
        let untrusted = try db.row(id)["last_error"] as? String ?? ""
        XCTAssertTrue(untrusted.hasPrefix("request error: SSL certificate problem"), untrusted)
        try db.makeAllDue()
        let missing = try db.deliver(["--ca-file", scratch.file("absent.pem")])
        XCTAssertEqual(missing.status, 66, missing.stderr)
        let trusted = try db.deliver(["--ca-file", scratch.file("ca.pem"), "--https-only"])
        XCTAssertEqual(trusted.status, 0, trusted.stderr)
        XCTAssertTrue(try db.row(id)["delivered_at"] is String)
        XCTAssertEqual(try receiver.requests().count, 1)
        // --https-only refuses a plain http endpoint.
        let plain = try Receiver(in: scratch)
        try db.addEndpoint(on: plain, path: "/status/204")
        _ = try db.enqueue(["e", "2"])
        let plainID = try SQL.value(
            db.path,
            "SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE e.url LIKE 'http:%'"
        )
        XCTAssertEqual(try db.deliver(["--https-only", "--ca-file", scratch.file("ca.pem")]).status, 0)
        XCTAssertEqual(
            try db.row(plainID)["last_error"] as? String,
            "request error: plain http is refused by --https-only")
        XCTAssertEqual(try plain.requests().count, 0)
    }

    // MARK: - Auto-disable

    func testAnEndpointFailingForDaysIsDisabledAndCanBeRecovered() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let failing = try db.addEndpoint(on: receiver, path: "/status/500", events: ["e"])
        let healthy = try db.addEndpoint(on: receiver, path: "/status/204", events: ["e"])
        _ = try db.enqueue(["e", "1"])
        XCTAssertEqual(try db.deliver(["--disable-after", "0"]).stderr, "")
        // Its failures began six days ago.
        try SQL.execute(
            db.path,
            "UPDATE webhook_delivery_attempts SET started_at = \(SQL.timeAgo(db.path, "6 days"))"
        )
        try db.makeAllDue()
        XCTAssertEqual(try db.deliver(["--disable-after", "0"]).stderr, "", "0 never disables")
        try db.makeAllDue()
        let metrics = scratch.file("m.prom")
        let run = try db.deliver(["--metrics-file", metrics, "--json"])
        XCTAssertEqual(run.status, 0)
        XCTAssertTrue(
            run.stderr.contains("keysat-deliver: warning: endpoint disabled endpoint_id=\(failing)"),
            run.stderr)
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: run.stdout) as? [String: Any])
            .compactMapValues { $0 as? Int }
        XCTAssertEqual(summary["endpoints_disabled"], 1)
        XCTAssertTrue(
            try String(contentsOfFile: metrics, encoding: .utf8).contains(
                "keysat_webhooks_last_run_endpoints_disabled 1"))
        let row = try XCTUnwrap(
            SQL.rows(
                db.path,
                "SELECT active, disabled_reason, disabled_at FROM webhook_endpoints WHERE id = '\(failing)'"
            ).first)
        XCTAssertEqual(row["active"] as? Int, 0)
        XCTAssertTrue(
            (row["disabled_reason"] as? String ?? "").hasPrefix("every attempt failed since "), "\(row)")
        XCTAssertTrue(row["disabled_at"] is String)
        XCTAssertEqual(
            try SQL.value(db.path, "SELECT active FROM webhook_endpoints WHERE id = '\(healthy)'"), "1")
        let list = try runTool("keysat-webhooks", ["endpoint", "list", "--db", db.path]).output
        XCTAssertTrue(list.contains("no (auto)"), list)
        let stats = try runTool("keysat-webhooks", ["stats", "--json", "--db", db.path]).output
        XCTAssertTrue(stats.contains("every attempt failed since"), stats)
        // The next run dead-letters what was pending; re-enabling and retrying recovers it.
        try db.makeAllDue()
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(
            try db.count(where: "endpoint_id = '\(failing)' AND last_error = 'endpoint deleted or disabled'"),
            1)
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "enable", failing, "--db", db.path]).status, 0)
        XCTAssertEqual(
            try SQL.value(
                db.path,
                "SELECT coalesce(disabled_reason, 'cleared') FROM webhook_endpoints WHERE id = '\(failing)'"),
            "cleared")
        let retried = try runTool(
            "keysat-webhooks",
            ["deliveries", "retry", "--dead", "--endpoint", failing, "--since", "1d", "--db", db.path])
        XCTAssertEqual(retried.output, "re-queued 1 delivery\n")
    }

    func testA410GoneDisablesTheEndpointAtOnce() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let gone = try db.addEndpoint(on: receiver, path: "/status/410")
        for i in 0..<3 { _ = try db.enqueue(["e", "\(i)"]) }
        let run = try db.deliver(["--concurrency", "1"])
        XCTAssertEqual(run.status, 0)
        XCTAssertEqual(try receiver.requests().count, 1, "no request after the receiver said 410")
        XCTAssertEqual(
            try SQL.value(
                db.path, "SELECT active || ' ' || disabled_reason FROM webhook_endpoints WHERE id = '\(gone)'"
            ), "0 receiver answered 410 Gone")
        XCTAssertEqual(
            try db.count(where: "next_attempt_at IS NULL AND delivered_at IS NULL"), 3,
            "all three dead-lettered")
        XCTAssertTrue(run.stderr.contains("endpoint disabled endpoint_id=\(gone)"), run.stderr)
    }

    // MARK: - Secret hygiene

    func testFilesArePrivateAndAReadableDatabaseIsWarnedAbout() throws {
        try requireSQLite("modes of the database file, its WAL, SHM and lock files")
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()
        _ = try db.enqueue(["e", "1"])
        // Keep a connection open so that the WAL and SHM files exist to be checked.
        let holder = try db.holdOpen()
        defer { holder.terminate() }
        _ = try db.enqueue(["e", "2"])
        XCTAssertEqual(try db.deliver(["--timeout", "1"]).stderr, "")
        for file in [db.path, db.path + "-wal", db.path + "-shm", db.path + ".deliver.lock"] {
            let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
            XCTAssertEqual(mode, 0o600, file)
        }
        // Shared with the group (the documented group model): no warning.
        try FileManager.default.setAttributes([.posixPermissions: 0o660], ofItemAtPath: db.path)
        XCTAssertEqual(try db.deliver().stderr, "")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: db.path)
        let warned = try db.deliver()
        XCTAssertTrue(
            warned.stderr.contains(
                "keysat-deliver: warning: \(db.path) can be read or written by users outside its owner and group (mode 0644)"
            ), warned.stderr)
        XCTAssertEqual(
            warned.stderr.components(separatedBy: "\n").filter { !$0.isEmpty }.count, 1, warned.stderr)
        let admin = try runTool("keysat-webhooks", ["endpoint", "list", "--db", db.path])
        XCTAssertTrue(admin.stderr.contains("chmod o-rwx"), admin.stderr)
    }

    // MARK: - Faults of the environment

    func testACorruptOrForeignFileIsReportedNotCrashedOn() throws {
        try requireSQLite("a corrupt or foreign file given as the database")
        let scratch = try Scratch()
        let random = scratch.file("random.db")
        try Data((0..<65536).map { _ in UInt8.random(in: 0...255) }).write(to: URL(fileURLWithPath: random))
        let before = try Data(contentsOf: URL(fileURLWithPath: random))
        for (tool, arguments) in [
            ("keysat-enqueue", ["e", "1"]), ("keysat-deliver", []),
            ("keysat-webhooks", ["endpoint", "list"]), ("keysat-webhooks", ["init"]),
        ] {
            let result = try runTool(tool, arguments + ["--db", random])
            XCTAssertEqual(result.status, 65, "\(tool): \(result.stderr)")
            XCTAssertTrue(
                result.stderr.hasPrefix("\(tool): error: database \(random) is damaged or not a database"),
                result.stderr)
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1)
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: random)), before)

        // A real database with a damaged page.
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()
        for i in 0..<300 {
            _ = try db.enqueue(["e", "{\"pad\":\"\(String(repeating: "x", count: 200))\",\"i\":\(i)}"])
        }
        XCTAssertEqual(try SQL.value(db.path, "PRAGMA wal_checkpoint(TRUNCATE)").isEmpty, false)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: db.path))
        try handle.seek(toOffset: 4096 * 6)
        try handle.write(contentsOf: Data(repeating: 0xA5, count: 4096 * 4))
        try handle.close()
        let damaged = try db.deliver()
        XCTAssertTrue([65, 70].contains(damaged.status), damaged.stderr)
        XCTAssertTrue(damaged.stderr.hasPrefix("keysat-deliver: error: "), damaged.stderr)
        XCTAssertEqual(damaged.stderr.split(separator: "\n").count, 1, damaged.stderr)
    }

    func testAReadOnlyDatabaseIsAPermissionError() throws {
        try requireSQLite("a database file its user may not write")
        guard isRoot else { throw XCTSkip("runs a command as another user") }
        let scratch = try Scratch()
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: scratch.path)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint()
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: db.path)
        let before = try SQL.dump(db.path)
        let asNobody = ["--reuid=65534", "--regid=65534", "--clear-groups"]
        let enqueue = try runTool(
            "/usr/bin/setpriv", asNobody + [Binaries.path("keysat-enqueue"), "--db", db.path, "e", "1"])
        XCTAssertEqual(enqueue.status, 77, enqueue.stderr)
        XCTAssertTrue(enqueue.stderr.hasPrefix("keysat-enqueue: error: "), enqueue.stderr)
        let deliver = try runTool(
            "/usr/bin/setpriv",
            asNobody + [
                Binaries.path("keysat-deliver"), "--db", db.path, "--lock-file", scratch.file("n.lock"),
            ])
        XCTAssertEqual(deliver.status, 77, deliver.stderr)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: db.path)
        let unreadable = try runTool(
            "/usr/bin/setpriv",
            asNobody + [Binaries.path("keysat-webhooks"), "endpoint", "list", "--db", db.path])
        XCTAssertEqual(unreadable.status, 77, unreadable.stderr)
        XCTAssertEqual(try SQL.dump(db.path), before)
    }

    func testAFullDiskLeavesEveryDeliveryRecordedOrDue() throws {
        try requireSQLite("a database file on a full file system")
        guard isRoot, (try? runTool("/usr/bin/unshare", ["--mount", "true"]))?.status == 0 else {
            throw XCTSkip("needs root and mount namespaces")
        }
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        // In a private mount namespace: a 2 MiB tmpfs holding the database; fill it, then write.
        let script = """
            set -u
            dir=$1 bin=$2 url=$3
            mount -t tmpfs -o size=2m tmpfs "$dir/small"
            export KEYSAT_DB="$dir/small/keysat.db"
            "$bin/keysat-webhooks" init > /dev/null
            "$bin/keysat-webhooks" endpoint add "$url" > /dev/null
            for i in $(seq 20); do "$bin/keysat-enqueue" e "{\\"i\\":$i}" > /dev/null; done
            dd if=/dev/zero of="$dir/small/filler" bs=4k 2>/dev/null
            sqlite3 "$KEYSAT_DB" .dump > "$dir/before.sql"
            python3 -c 'print("[" + ",".join(["1234567890"] * 60000) + "]")' | "$bin/keysat-enqueue" e > /dev/null 2> "$dir/enqueue.err"; echo "enqueue=$?"
            sqlite3 "$KEYSAT_DB" .dump > "$dir/after-enqueue.sql"
            "$bin/keysat-deliver" > /dev/null 2> "$dir/deliver.err"; echo "deliver=$?"
            rm -f "$dir/small/filler"
            "$bin/keysat-deliver" > /dev/null 2> "$dir/deliver2.err"; echo "drain=$?"
            sqlite3 "$KEYSAT_DB" "SELECT count(*) FROM webhook_deliveries WHERE delivered_at IS NOT NULL"
            sqlite3 "$KEYSAT_DB" "PRAGMA integrity_check"
            """
        try FileManager.default.createDirectory(
            atPath: scratch.file("small"), withIntermediateDirectories: true)
        let result = try runTool(
            "/usr/bin/unshare",
            [
                "--mount", "/bin/sh", "-c", script, "sh", scratch.path, Binaries.directory.path,
                receiver.url("/status/204"),
            ])
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.lines
        let enqueueError = try String(contentsOfFile: scratch.file("enqueue.err"), encoding: .utf8)
        XCTAssertEqual(lines.first, "enqueue=74", "\(lines) \(enqueueError)")
        XCTAssertTrue(
            enqueueError.hasPrefix("keysat-enqueue: error: database ") && enqueueError.contains("disk full"),
            enqueueError)
        XCTAssertEqual(
            try String(contentsOfFile: scratch.file("after-enqueue.sql"), encoding: .utf8),
            try String(contentsOfFile: scratch.file("before.sql"), encoding: .utf8))
        // The run that cannot record may fail, but nothing is lost: the next run delivers everything.
        XCTAssertTrue(["deliver=0", "deliver=74"].contains(lines[1]), "\(lines)")
        XCTAssertEqual(lines[2], "drain=0", "\(lines)")
        XCTAssertEqual(lines[3], "20")
        XCTAssertEqual(lines[4], "ok")
        XCTAssertEqual(Set(try receiver.requests().map(\.deliveryID)).count, 20)
    }

    func testMisbehavingReceiversAreRecordedAsFailures() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        var ids: [String: String] = [:]
        for path in ["/garbage", "/reset", "/huge/200", "/huge/500"] {
            let event = "p" + path.replacingOccurrences(of: "/", with: "_")
            try db.addEndpoint(on: receiver, path: path, events: [event])
            ids[path] = try XCTUnwrap(db.enqueue([event, "{}"]).lines.first)
        }
        let started = Date()
        let run = try db.deliver(["--timeout", "20"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.stderr, "")
        XCTAssertLessThan(Date().timeIntervalSince(started), 15, "a gigabyte body is not read")
        for path in ["/garbage", "/reset"] {
            let row = try db.row(ids[path]!)
            XCTAssertTrue(
                (row["last_error"] as? String ?? "").hasPrefix("request error: "), "\(path): \(row)")
            XCTAssertEqual(row["attempt_count"] as? Int, 1)
        }
        XCTAssertTrue(try db.row(ids["/huge/200"]!)["delivered_at"] is String)
        let huge500 = try db.row(ids["/huge/500"]!)
        XCTAssertEqual(huge500["last_status_code"] as? Int, 500)
        XCTAssertEqual(
            huge500["last_error"] as? String, "non-2xx response: " + String(repeating: "h", count: 200))
        XCTAssertEqual(try SQL.integrityCheck(db.path), "ok")
    }
}
