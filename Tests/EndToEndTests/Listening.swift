import Foundation
import XCTest

// Running `keysat-webhooks listen` and talking to it over raw sockets, for ListenTests and
// ListenAttackTests.

/// Starts `keysat-webhooks listen` on a free port; returns the process, its port and its output files.
func startListen(_ scratch: Scratch, _ arguments: [String], environment: [String: String] = [:])
    throws -> (Process, Int, String)
{
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Binaries.path("keysat-webhooks"))
    process.arguments = ["listen", "--port", "0"] + arguments
    var env = ProcessInfo.processInfo.environment
    for (key, value) in environment { env[key] = value }
    process.environment = env
    let out = scratch.file("listen.out")
    let err = scratch.file("listen.err")
    FileManager.default.createFile(atPath: out, contents: nil)
    FileManager.default.createFile(atPath: err, contents: nil)
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
    try process.run()
    let deadline = Date().addingTimeInterval(10)
    while true {
        let text = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
        if let range = text.range(
            of: #"listening on http://127\.0\.0\.1:(\d+)/"#, options: .regularExpression)
        {
            let port = Int(text[range].split(separator: ":").last!.dropLast())!
            return (process, port, out)
        }
        guard Date() < deadline, process.isRunning else {
            throw NSError(domain: "listen did not start: \(text)", code: 1)
        }
        usleep(20_000)
    }
}

/// Sends raw bytes to 127.0.0.1:`port` with Python's socket module and returns the answer's
/// status line (empty when the connection was closed without one).
func rawHTTP(port: Int, _ request: String) throws -> String {
    let script = """
        import socket, sys
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
        s.sendall(bytes.fromhex(sys.argv[2]))
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        print(data.split(b"\\r\\n")[0].decode("latin-1"))
        """
    // As hex: argv cannot carry a NUL byte. Each scalar of `request` is one byte (latin-1).
    let hex = request.unicodeScalars.map { String(format: "%02x", $0.value) }.joined()
    return try runTool("/usr/bin/env", ["python3", "-c", script, String(port), hex]).output
        .trimmingCharacters(in: .newlines)
}
