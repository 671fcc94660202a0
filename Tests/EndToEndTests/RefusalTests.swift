import Foundation
import XCTest

/// A destination the network policy refuses is said, not swallowed (issue 11).
final class RefusalTests: XCTestCase {
    func testARefusedDestinationIsWarnedOncePerEndpointAndShownByDryRun() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let first = try db.addEndpoint(on: receiver, path: "/status/204")
        let second = try db.addEndpoint(on: receiver, path: "/status/200")
        for index in 0..<3 { _ = try db.enqueue(["license.issued", "{\"n\":\(index)}"]) }
        let policy = ["KEYSAT_ALLOW_NETWORKS": ""]

        let dry = try runTool("keysat-deliver", ["--db", db.path, "--dry-run"], environment: policy)
        XCTAssertEqual(dry.status, 0, dry.stderr)
        XCTAssertEqual(dry.lines.count, 6, dry.output)
        for line in dry.lines {
            XCTAssertTrue(line.hasSuffix(" refused:127.0.0.1"), line)
        }
        XCTAssertEqual(try receiver.requests().count, 0)

        let run = try runTool("keysat-deliver", ["--db", db.path], environment: policy)
        XCTAssertEqual(run.status, 0, run.stderr)
        let warnings = run.stderr.split(separator: "\n").filter {
            $0.contains("destination refused by the network policy")
        }
        XCTAssertEqual(warnings.count, 2, run.stderr)
        for endpoint in [first, second] {
            XCTAssertEqual(warnings.filter { $0.contains("endpoint_id=\(endpoint)") }.count, 1, run.stderr)
        }
        XCTAssertTrue(
            warnings.allSatisfy {
                $0.contains("address=127.0.0.1") && $0.contains("--allow-network 127.0.0.1")
            })
        XCTAssertTrue(warnings.allSatisfy { $0.contains("host=127.0.0.1") }, run.stderr)
        XCTAssertEqual(try receiver.requests().count, 0)

        // Allowed: the same listing without marks, and a quiet run.
        let allowed = try db.deliver(["--dry-run"])
        XCTAssertTrue(allowed.lines.allSatisfy { !$0.contains("refused") }, allowed.output)
        try db.makeAllDue()
        XCTAssertEqual(try db.deliver().stderr, "")
    }
}

/// `init` on Keysat's own database says, once, that Keysat's worker must be stopped (issue 11).
final class BesideKeysatTests: XCTestCase {
    func testInitOnAKeysatDatabaseSaysOnceThatKeysatsWorkerMustStop() throws {
        try requireSQLite("Keysat's own SQLite tables adopted as they are")
        let scratch = try Scratch()
        let path = scratch.file("keysat.db")
        try makeKeysatDatabase(at: path)
        let first = try runTool("keysat-webhooks", ["init", "--db", path])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(first.output, path + "\n")
        XCTAssertTrue(
            first.stderr.hasPrefix(
                "keysat-webhooks: note: this is Keysat's own database: stop Keysat's built-in webhook delivery worker"
            ),
            first.stderr)
        XCTAssertEqual(first.stderr.split(separator: "\n").count, 1)
        let second = try runTool("keysat-webhooks", ["init", "--db", path])
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(second.stderr, "", "said once")
        // A database of this project's own is not Keysat's.
        let own = try runTool("keysat-webhooks", ["init", "--db", scratch.file("own.db")])
        XCTAssertEqual(own.stderr, "")
    }
}

/// A metrics file that cannot be written is a warning, not a failed run, and the next metrics
/// written say so (issue 11).
final class MetricsFailureTests: XCTestCase {
    func testAnUnwritableMetricsFileWarnsAndTheNextFileCountsIt() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/204")
        _ = try db.enqueue(["e", "{}"])
        let missing = scratch.file("no-such-folder/keysat.prom")
        let failed = try db.deliver(["--metrics-file", missing])
        XCTAssertEqual(failed.status, 0, failed.stderr)
        XCTAssertEqual(try db.count(where: "delivered_at IS NOT NULL"), 1, "the delivery was recorded")
        XCTAssertTrue(failed.stderr.contains("warning: cannot write the metrics file"), failed.stderr)
        XCTAssertEqual(failed.stderr.split(separator: "\n").count, 1, failed.stderr)

        // From the environment, as the shipped units and cron file give it.
        let metrics = scratch.file("keysat.prom")
        let next = try runTool(
            "keysat-deliver", ["--db", db.path], environment: ["KEYSAT_METRICS_FILE": metrics])
        XCTAssertEqual(next.status, 0, next.stderr)
        XCTAssertEqual(next.stderr, "")
        let text = try String(contentsOfFile: metrics, encoding: .utf8)
        XCTAssertTrue(text.contains("\nkeysat_webhooks_metrics_write_failures_total 1\n"), text)
        XCTAssertTrue(text.contains("\nkeysat_webhooks_metrics_last_write_failure_timestamp_seconds "), text)
        let mode = try FileManager.default.attributesOfItem(atPath: metrics)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o644)
        // Parsed by Prometheus' own parser.
        let parsed = try runTool(
            "/usr/bin/env",
            [
                "python3", "-c",
                "import sys; from prometheus_client.parser import text_string_to_metric_families as p; print(sorted(f.name for f in p(open(sys.argv[1]).read()) if f.name.startswith('keysat_webhooks_metrics')))",
                metrics,
            ])
        XCTAssertEqual(parsed.status, 0, parsed.stderr)
        XCTAssertTrue(parsed.output.contains("keysat_webhooks_metrics_write_failures"), parsed.output)
    }
}
