import KeysatCore
import XCTest

/// Exact decimal comparison of JSON numbers, by hand-worked pairs.
final class JSONNumberTests: XCTestCase {
    func testOrderAndEquality() {
        let ascending = [
            "-1e400", "-12345678901234567890.5", "-2", "-1.5", "-1", "-0.001", "0", "1e-400", "0.001", "0.5",
            "1", "1.5", "2", "10", "9007199254740992", "9007199254740993", "12345678901234567890", "1e400",
        ]
        for (i, a) in ascending.enumerated() {
            for (j, b) in ascending.enumerated() {
                XCTAssertEqual(JSONNumber(a) < JSONNumber(b), i < j, "\(a) < \(b)")
                XCTAssertEqual(JSONNumber(a) == JSONNumber(b), i == j, "\(a) == \(b)")
            }
        }
        for (a, b) in [("1", "1.0"), ("1", "10e-1"), ("100", "1E2"), ("0", "-0"), ("0", "0.000e5"), ("-2.50", "-25e-1")] {
            XCTAssertEqual(JSONNumber(a), JSONNumber(b), "\(a) == \(b)")
        }
        XCTAssertEqual(JSONNumber("1e99999999999999999999"), JSONNumber("1e99999999999999999999"))
        XCTAssertLessThan(JSONNumber("1e999"), JSONNumber("1e99999999999999999999"))
    }
}
