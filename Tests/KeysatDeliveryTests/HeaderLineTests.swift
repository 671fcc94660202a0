import XCTest

import KeysatCore

/// The one check of header lines (issue 20), against RFC 9110's token grammar and the bytes
/// that end or split a line for some parser.
final class HeaderLineTests: XCTestCase {
    func testTokensAreRFC9110Tokens() {
        for name in ["Content-Length", "webhook-id", "X-Keysat-Signature", "a!#$%&'*+-.^_`|~9"] {
            XCTAssertTrue(HeaderLine.isToken(Array(name.utf8)), name)
        }
        for name in [
            "", "Transfer-Encoding ", " Host", "Content-Length\t", "a:b", "a\"b", "a(b)", "é", "a\u{0}b",
        ] {
            XCTAssertFalse(HeaderLine.isToken(Array(name.utf8)), name)
        }
    }

    func testValuesWithControlBytesAreUnsafe() {
        XCTAssertTrue(HeaderLine.isSafeValue(Array("v1,abc= sha256=00 licença ✓".utf8)))
        XCTAssertTrue(HeaderLine.isSafeValue([UInt8]()))
        for byte: UInt8 in [0, 9, 10, 13, 0x1B, 0x7F] {
            XCTAssertFalse(HeaderLine.isSafeValue(Array("a".utf8) + [byte] + Array("b".utf8)), "\(byte)")
        }
        XCTAssertFalse(HeaderLine.isSafe(name: "X-A", value: "a\nPOST /admin HTTP/1.1"))
        XCTAssertFalse(HeaderLine.isSafe(name: "Transfer-Encoding ", value: "chunked"))
        XCTAssertTrue(HeaderLine.isSafe(name: "X-Keysat-Event", value: "license.issued"))
    }
}
