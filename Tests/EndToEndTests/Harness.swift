import Foundation
import XCTest

/// What a finished process left: its exit status and everything it wrote.
struct ProcessResult {
    var status: Int32
    var stdout: Data
    var stderr: String
    var output: String { String(decoding: stdout, as: UTF8.self) }
    var lines: [String] { output.split(separator: "\n").map(String.init) }
}

/// Running the built executables, as a user would.
enum Binaries {
    /// The folder holding the built binaries: `$KEYSAT_BIN_DIR` (the Makefile sets it), else
    /// the package's default debug build folder.
    static let directory: URL = {
        if let dir = ProcessInfo.processInfo.environment["KEYSAT_BIN_DIR"], !dir.isEmpty {
            return URL(fileURLWithPath: dir)
        }
        return packageRoot.appendingPathComponent(".build/debug")
    }()

    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
}

/// Runs `program` (a built binary's name, or an absolute path) and waits for it.
///
/// Standard input, output and error are files, so no pipe can fill up and block either side.
@discardableResult
func runTool(
    _ program: String, _ arguments: [String], stdin: Data? = nil, environment: [String: String] = [:]
) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program.hasPrefix("/") ? program : Binaries.path(program))
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "KEYSAT_DB")
    // The test receivers listen on 127.0.0.1, which the network policy refuses by default;
    // the policy's own tests set this variable themselves.
    env["KEYSAT_ALLOW_NETWORKS"] = "127.0.0.1"
    for (key, value) in environment { env[key] = value }
    process.environment = env
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("keysat-io-\(UUID().uuidString)")
    let paths = ["in", "out", "err"].map { base.path + "." + $0 }
    defer { for path in paths { try? FileManager.default.removeItem(atPath: path) } }
    try (stdin ?? Data()).write(to: URL(fileURLWithPath: paths[0]))
    FileManager.default.createFile(atPath: paths[1], contents: nil)
    FileManager.default.createFile(atPath: paths[2], contents: nil)
    let input = try FileHandle(forReadingFrom: URL(fileURLWithPath: paths[0]))
    let output = try FileHandle(forWritingTo: URL(fileURLWithPath: paths[1]))
    let error = try FileHandle(forWritingTo: URL(fileURLWithPath: paths[2]))
    defer {
        try? input.close()
        try? output.close()
        try? error.close()
    }
    process.standardInput = input
    process.standardOutput = output
    process.standardError = error
    try process.run()
    process.waitUntilExit()
    return ProcessResult(
        status: process.terminationStatus,
        stdout: try Data(contentsOf: URL(fileURLWithPath: paths[1])),
        stderr: String(decoding: try Data(contentsOf: URL(fileURLWithPath: paths[2])), as: UTF8.self))
}

/// A temporary folder, removed when the test ends.
final class Scratch {
    let path: String

    init() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent(
            "keysat-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        path = base.path
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ text: String, mode: Int = 0o644) throws -> String {
        let target = file(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: target))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: target)
        return target
    }
}

/// Reading a database with the sqlite3 command-line tool, independently of the code under test.
enum SQL {
    /// Rows of a query, each column as text (NULL as nil).
    static func rows(_ database: String, _ sql: String) throws -> [[String: Any]] {
        let result = try runTool("/usr/bin/sqlite3", ["-cmd", ".timeout 5000", "-json", database, sql])
        guard result.status == 0 else {
            throw NSError(
                domain: "sqlite3", code: Int(result.status),
                userInfo: [NSLocalizedDescriptionKey: result.stderr])
        }
        if result.stdout.isEmpty { return [] }
        return try JSONSerialization.jsonObject(with: result.stdout) as? [[String: Any]] ?? []
    }

    /// One value of a query, as text.
    static func value(_ database: String, _ sql: String) throws -> String {
        let result = try runTool("/usr/bin/sqlite3", ["-cmd", ".timeout 5000", database, sql])
        guard result.status == 0 else {
            throw NSError(
                domain: "sqlite3", code: Int(result.status),
                userInfo: [NSLocalizedDescriptionKey: result.stderr])
        }
        return result.output.trimmingCharacters(in: .newlines)
    }

    static func execute(_ database: String, _ sql: String) throws {
        _ = try value(database, sql)
    }

    /// The whole content, to compare before and after a command that must change nothing.
    static func dump(_ database: String) throws -> String {
        try runTool("/usr/bin/sqlite3", [database, ".dump"]).output
    }
}

/// A database made by `keysat-webhooks init`, with helpers for endpoints.
struct TestDatabase {
    let path: String

    init(in scratch: Scratch, name: String = "keysat.db") throws {
        path = scratch.file(name)
        let result = try runTool("keysat-webhooks", ["init", "--db", path])
        XCTAssertEqual(result.status, 0, result.stderr)
    }

    /// Adds an endpoint and returns its id.
    @discardableResult
    func addEndpoint(_ url: String = "http://127.0.0.1:9/hook", events: [String] = []) throws -> String {
        // Tests add the same URL for several endpoints on purpose.
        var arguments = ["endpoint", "add", url, "--allow-duplicate", "--db", path, "--json"]
        for event in events { arguments += ["--event", event] }
        let result = try runTool("keysat-webhooks", arguments)
        XCTAssertEqual(result.status, 0, result.stderr)
        let object = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
        return object?["id"] as? String ?? ""
    }

    func enqueue(_ arguments: [String], stdin: Data? = nil) throws -> ProcessResult {
        try runTool("keysat-enqueue", ["--db", path] + arguments, stdin: stdin)
    }

    /// keysat-deliver started in the background on this database (loopback allowed), its
    /// standard output to `stdout` (a file path) or discarded.
    func startDeliver(_ arguments: [String], stdout: String? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.path("keysat-deliver"))
        process.arguments = ["--db", path, "--allow-network", "127.0.0.1"] + arguments
        if let stdout {
            FileManager.default.createFile(atPath: stdout, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdout))
        } else {
            process.standardOutput = FileHandle.nullDevice
        }
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Another program keeping the database open (as Keysat does), so the WAL and SHM files
    /// stay when the tools close it. Terminate the process when done.
    func holdOpen() throws -> Process {
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        holder.arguments = [
            "python3", "-c",
            "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1]); c.execute('SELECT 1 FROM webhook_endpoints').fetchall(); time.sleep(120)",
            path,
        ]
        try holder.run()
        usleep(300_000)
        return holder
    }

    func count(_ table: String = "webhook_deliveries", where condition: String = "1") throws -> Int {
        Int(try SQL.value(path, "SELECT count(*) FROM \(table) WHERE \(condition)")) ?? -1
    }
}

/// HMAC-SHA256 computed by Python's hmac module: an implementation independent of the tool's.
enum IndependentHMAC {
    static func sha256(key: Data, message: Data) throws -> Data {
        let script =
            "import hmac, hashlib, sys; k = bytes.fromhex(sys.argv[1]); sys.stdout.buffer.write(hmac.new(k, sys.stdin.buffer.read(), hashlib.sha256).digest())"
        let result = try runTool(
            "/usr/bin/env", ["python3", "-c", script, key.map { String(format: "%02x", $0) }.joined()],
            stdin: message)
        XCTAssertEqual(result.status, 0, result.stderr)
        return result.stdout
    }
}

/// A database made by Keysat itself (its schema and rows, Fixtures/keysat-schema.sql), with the
/// sqlite3 tool; mode 0600, as the service keeps it.
func makeKeysatDatabase(at path: String) throws {
    let schema = Binaries.packageRoot.appendingPathComponent("Tests/EndToEndTests/Fixtures/keysat-schema.sql")
        .path
    let made = try runTool("/usr/bin/sqlite3", [path, ".read \(schema)"])
    XCTAssertEqual(made.status, 0, made.stderr)
    XCTAssertEqual(chmod(path, 0o600), 0)
}
