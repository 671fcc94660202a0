import KeysatCore
import XCTest

final class JSONValidatorTests: XCTestCase {
    private func failure(_ text: String) -> JSONValidator.Failure? {
        do {
            try JSONValidator.validate(Array(text.utf8))
            return nil
        } catch {
            return error
        }
    }

    func testAcceptsRFC8259Values() {
        let valid = [
            "0", "-0", "1.5e10", "-12.25E-3", "12345678901234567890", "1.10", "true", "false", "null",
            #""""#, #""\u00e9\uD83D\uDE00 \" \\ \/ \b \f \n \r \t""#, "\"Zoë 😀 中\"",
            "[]", "{}", " \t\r\n[1, {\"a\": [null, {}]}] \n", #"{"a":1,"a":2}"#,
            String(repeating: "[", count: 512) + String(repeating: "]", count: 512),
        ]
        for text in valid { XCTAssertNil(failure(text), text) }
    }

    func testRejectsWithTheOffsetOfTheFirstBadByte() {
        let invalid: [(String, Int)] = [
            ("", 0), ("   ", 3), ("01", 1), ("1.", 2), (".5", 0), ("+1", 0), ("1e", 2), ("-", 1),
            ("[1,]", 3), ("[1 2]", 3), (#"{"a" 1}"#, 5), ("{a:1}", 1), (#"{"a":1,}"#, 7),
            ("tru", 3), ("nul", 3), ("True", 0), ("NaN", 0), ("[1]x", 3), ("\"abc", 4),
            ("\"a\u{01}\"", 2), (#""\x""#, 2), (#""\u12G4""#, 5), ("[", 1), ("{\"a\":}", 5),
            ("\u{FEFF}1", 0), ("1 2", 2),
            (String(repeating: "[", count: 513) + String(repeating: "]", count: 513), 512),
        ]
        for (text, offset) in invalid {
            XCTAssertEqual(failure(text)?.offset, offset, text.debugDescription)
        }
    }

    func testRejectsIllFormedUTF8() throws {
        for bytes: [UInt8] in [
            [0x22, 0xC3, 0x22], [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22],
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], [0x22, 0xFF, 0x22], [0x22, 0xE0, 0x80, 0x80, 0x22],
        ] {
            XCTAssertThrowsError(try JSONValidator.validate(bytes), "\(bytes)")
        }
        XCTAssertNoThrow(try JSONValidator.validate([0x22, 0xF0, 0x9F, 0x98, 0x80, 0x22]))
    }
}
