import Foundation
import XCTest

/// The Python test receiver (Fixtures/receiver.py), run as its own process on loopback.
final class Receiver {
    struct Request {
        var path: String
        var headers: [String: String]
        var body: Data
        var signatureOK: Bool?
        var receivedAt: Double
        var openConnections: Int
        var activeRequests: Int
        /// Requests of its path and event data `key` in flight as it arrived, itself included.
        var activeSameKey: Int
        var deliveryID: String { headers["x-keysat-delivery"] ?? "" }
    }

    let directory: String
    let port: Int
    let scheme: String
    private let process: Process

    /// - Parameter clientCA: with `tls`, demand a client certificate this CA signed (mutual TLS).
    init(
        in scratch: Scratch, host: String = "127.0.0.1", tls: (certificate: String, key: String)? = nil,
        clientCA: String? = nil
    ) throws {
        directory = scratch.file("receiver-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let script = Binaries.packageRoot.appendingPathComponent("Tests/EndToEndTests/Fixtures/receiver.py")
            .path
        process.arguments =
            ["python3", script, directory, host] + (tls.map { [$0.certificate, $0.key] } ?? [])
            + (clientCA.map { [$0] } ?? [])
        scheme = tls == nil ? "http" : "https"
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let portFile = directory + "/port"
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: portFile) {
            guard Date() < deadline, process.isRunning else {
                throw NSError(domain: "receiver did not start", code: 1)
            }
            usleep(20_000)
        }
        port = Int(try String(contentsOfFile: portFile, encoding: .utf8)) ?? 0
    }

    deinit {
        process.terminate()
        process.waitUntilExit()
    }

    /// A URL on this receiver.
    func url(_ path: String) -> String { "\(scheme)://127.0.0.1:\(port)\(path)" }

    /// Tells the receiver which secret an endpoint path signs with, for its own HMAC check.
    func expectSecret(_ secret: String, forPath path: String) throws {
        let file = directory + "/secrets.json"
        var secrets =
            (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))))
            as? [String: String] ?? [:]
        secrets[path] = secret
        try JSONSerialization.data(withJSONObject: secrets).write(to: URL(fileURLWithPath: file))
    }

    /// Makes requests whose event data's `key` is one of `keys` (or "KEY/SEQUENCE") answer 500.
    func failKeys(_ keys: [String]) throws {
        try JSONSerialization.data(withJSONObject: keys).write(
            to: URL(fileURLWithPath: directory + "/failing_keys.json"))
    }

    /// Every request received so far, in arrival order.
    func requests() throws -> [Request] {
        guard let text = try? String(contentsOfFile: directory + "/requests.jsonl", encoding: .utf8) else {
            return []
        }
        return try text.split(separator: "\n").map { line in
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return Request(
                path: object["path"] as? String ?? "",
                headers: object["headers"] as? [String: String] ?? [:],
                body: Data(base64Encoded: object["body_b64"] as? String ?? "") ?? Data(),
                signatureOK: object["signature_ok"] as? Bool,
                receivedAt: object["received_at"] as? Double ?? 0,
                openConnections: object["open_connections"] as? Int ?? 0,
                activeRequests: object["active_requests"] as? Int ?? 0,
                activeSameKey: object["active_same_key"] as? Int ?? 0)
        }
    }
}

extension TestDatabase {
    /// Adds an endpoint at `path` on `receiver` and registers its secret there.
    @discardableResult
    func addEndpoint(on receiver: Receiver, path: String, events: [String] = []) throws -> String {
        let id = try addEndpoint(receiver.url(path), events: events)
        try receiver.expectSecret(
            try SQL.value(self.path, "SELECT secret FROM webhook_endpoints WHERE id = '\(id)'"), forPath: path
        )
        return id
    }

    func deliver(_ arguments: [String] = []) throws -> ProcessResult {
        try runTool("keysat-deliver", ["--db", path] + arguments)
    }

    /// Makes every pending delivery due now, as if its backoff had passed.
    func makeAllDue() throws {
        try SQL.execute(
            path,
            "UPDATE webhook_deliveries SET next_attempt_at = '2000-01-01T00:00:00.000000+00:00' WHERE next_attempt_at IS NOT NULL"
        )
    }

    func row(_ id: String) throws -> [String: Any] {
        try XCTUnwrap(SQL.rows(path, "SELECT * FROM webhook_deliveries WHERE id = '\(id)'").first)
    }
}

/// Seconds since the epoch of a stored RFC 3339 timestamp, as SQLite's julianday reads it;
/// also psql's text for a `timestamptz` ("2026-01-01 10:00:00.5+00", its offset in hours only,
/// which julianday does not read: made "+00:00").
func epochSeconds(_ text: Any?) throws -> Double {
    var text = try XCTUnwrap(text as? String)
    if text.range(of: #"[+-][0-9]{2}$"#, options: .regularExpression) != nil { text += ":00" }
    return try XCTUnwrap(Double(SQL.value(":memory:", "SELECT (julianday('\(text)') - 2440587.5) * 86400.0")))
}
