import Foundation
import KeysatCore
import XCTest

/// The pure-Swift SHA-256 against the vectors published with FIPS 180-2 (appendix B) and against
/// Python's hashlib at every length around the block and padding boundaries.
final class SHA256Tests: XCTestCase {
    private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    func testFIPS180Vectors() {
        XCTAssertEqual(
            hex(SHA256.hash(Array("abc".utf8))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(
            hex(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(
            hex(SHA256.hash([UInt8](repeating: 0x61, count: 1_000_000))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        XCTAssertEqual(
            hex(SHA256.hash([])), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    /// Lengths 0 to 200, fed in pieces of varying size: each digest as Python's hashlib gives it.
    func testEveryLengthAcrossBlockBoundariesMatchesHashlib() throws {
        let lengths = Array(0...200)
        let script =
            "import hashlib; print('\\n'.join(hashlib.sha256(bytes(i % 251 for i in range(n))).hexdigest() for n in range(201)))"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let expected = output.split(separator: "\n").map(String.init)
        XCTAssertEqual(expected.count, lengths.count)
        for (n, digest) in zip(lengths, expected) {
            let message = (0..<n).map { UInt8($0 % 251) }
            var hash = SHA256()
            var start = 0
            while start < n {
                let end = min(n, start + (start % 7) + 1)
                hash.update(message[start..<end])
                start = end
            }
            XCTAssertEqual(hex(hash.finish()), digest, "length \(n)")
        }
    }
}
