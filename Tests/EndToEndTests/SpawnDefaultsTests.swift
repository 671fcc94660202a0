import Foundation
import XCTest

/// Issue 20: runs started by `KEYSAT_KICK=spawn` ignored /etc/default/keysat-webhooks, so a
/// receiver the operator allowed there was refused. The spawned run now reads the file's
/// `KEYSAT_*` settings, as the service (EnvironmentFile=) and the cron line do; the file is
/// hostile input (`DefaultsFile`).
final class SpawnDefaultsTests: XCTestCase {
    func testASpawnedRunReadsTheDefaultsFile() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/204")
        let metrics = scratch.file("metrics.prom")
        let defaults = try scratch.write(
            "keysat-webhooks.default",
            """
            # as the package ships it, with the operator's changes, saved with CRLF line ends\r
            KEYSAT_DB=/nonexistent/keysat.db\r
            KEYSAT_ALLOW_NETWORKS=127.0.0.1\r
            KEYSAT_METRICS_FILE="\(metrics)"\r
            KEYSAT_METRICS_FILE=\(scratch.path)/evil$(touch \(scratch.path)/pwned).prom
            KEYSAT_METRICS_FILE=\(scratch.path)/evil2;touch \(scratch.path)/pwned
            KEYSAT_METRICS_FILE=\(scratch.path)/evil3 \(scratch.path)/other.prom
            LD_PRELOAD=\(scratch.path)/missing.so
             KEYSAT_ALLOW_NETWORKS=0.0.0.0/0

            """, mode: 0o644)
        let id = try spawn(db, defaults: defaults)
        let deadline = Date().addingTimeInterval(10)
        while try db.row(id)["delivered_at"] is NSNull, Date() < deadline { usleep(50_000) }
        let row = try db.row(id)
        XCTAssertTrue(row["delivered_at"] is String, "\(row)")
        XCTAssertEqual(try receiver.requests().map(\.deliveryID), [id])
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: metrics) { usleep(50_000) }
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: metrics), "the file's KEYSAT_METRICS_FILE was used")
        let files = try FileManager.default.contentsOfDirectory(atPath: scratch.path)
        XCTAssertFalse(files.contains { $0.hasPrefix("evil") || $0 == "pwned" }, "\(files)")
    }

    /// A file that another user could change is not trusted: the run keeps the default policy.
    func testAWritableDefaultsFileIsIgnored() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/204")
        let defaults = try scratch.write("writable.default", "KEYSAT_ALLOW_NETWORKS=127.0.0.1\n", mode: 0o666)
        chmod(defaults, 0o666)
        let id = try spawn(db, defaults: defaults)
        let deadline = Date().addingTimeInterval(10)
        while try (db.row(id)["attempt_count"] as? Int ?? 0) == 0, Date() < deadline { usleep(50_000) }
        XCTAssertTrue(try db.row(id)["delivered_at"] is NSNull)
        XCTAssertEqual(try receiver.requests().count, 0, "127.0.0.1 stays refused")
    }

    /// keysat-enqueue with KEYSAT_KICK=spawn, as a service without systemd would run it, and
    /// without KEYSAT_ALLOW_NETWORKS in its environment (the harness sets it for other tests).
    private func spawn(_ db: TestDatabase, defaults: String) throws -> String {
        let result = try runTool(
            "/usr/bin/env",
            [
                "-u", "KEYSAT_ALLOW_NETWORKS", "-u", "KEYSAT_METRICS_FILE", "KEYSAT_KICK=spawn",
                "KEYSAT_DEFAULTS_FILE=" + defaults, Binaries.path("keysat-enqueue"), "--db", db.path,
                "license.issued", "{}",
            ])
        XCTAssertEqual(result.status, 0, result.stderr)
        return try XCTUnwrap(result.lines.first)
    }
}
