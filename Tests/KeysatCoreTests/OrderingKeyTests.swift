import KeysatCore
import XCTest

/// `OrderingKey` and `OrderByPath`: which values of an event's data become keys.
final class OrderingKeyTests: XCTestCase {
    private func derive(_ json: String, _ path: String) -> String? {
        OrderingKey.derive(from: Array(json.utf8), path: OrderByPath(path)!)
    }

    func testStringsAndNumbersBecomeKeysOtherValuesDoNot() {
        XCTAssertEqual(derive(#"{"license_id":"lic_1"}"#, "license_id"), "lic_1")
        XCTAssertEqual(derive(#"{"license":{"id":"a\u00e9"}}"#, "license.id"), "aé", "escapes decoded")
        XCTAssertEqual(derive(#"{"license":{"id":42}}"#, "license.id"), "42")
        XCTAssertEqual(derive(#"{"n":4.2e1}"#, "n"), "4.2e1", "a number as written")
        for json in [
            #"{"n":true}"#, #"{"n":false}"#, #"{"n":null}"#, #"{"n":[1]}"#, #"{"n":{"a":1}}"#, #"{"m":1}"#,
            #"{"n":""}"#, #"{"n":"a\u0001b"}"#, "{\"n\":\"\(String(repeating: "k", count: 256))\"}", #"[1]"#,
        ] {
            XCTAssertNil(derive(json, "n"), json)
        }
        XCTAssertEqual(derive("{\"n\":\"\(String(repeating: "k", count: 255))\"}", "n")?.count, 255)
        XCTAssertNil(derive(#"{"license":"x"}"#, "license.id"), "not an object on the way")
    }

    func testPathsAndKeysAreChecked() {
        for bad in ["", ".", "a.", ".a", "a..b", "a b", "a/b", "ü", String(repeating: "a.", count: 8) + "a"] {
            XCTAssertNil(OrderByPath(bad), bad)
        }
        XCTAssertEqual(OrderByPath("license.id")?.keys, ["license", "id"])
        XCTAssertEqual(OrderByPath(String(repeating: "a.", count: 7) + "a")?.keys.count, 8)
        XCTAssertThrowsError(try OrderingKey.validate("a\u{7F}"))
        XCTAssertThrowsError(try OrderingKey.validate("a\u{85}b"), "C1 controls too")
        XCTAssertThrowsError(try OrderingKey.validate("a\u{FFFD}"), "what bytes that are not UTF-8 read as")
        XCTAssertNoThrow(try OrderingKey.validate("lic_1 ü"))
    }
}
