import KeysatCore
import XCTest

final class TimestampTests: XCTestCase {
    func testFixedWidthRFC3339() {
        XCTAssertEqual(Timestamp(microseconds: 0).rfc3339, "1970-01-01T00:00:00.000000+00:00")
        XCTAssertEqual(
            Timestamp(microseconds: 1_795_936_505_123_456).rfc3339, "2026-11-29T07:15:05.123456+00:00")
        XCTAssertEqual(Timestamp(seconds: 951_782_400).rfc3339, "2000-02-29T00:00:00.000000+00:00")
        XCTAssertEqual(Timestamp(microseconds: -1).rfc3339, "1969-12-31T23:59:59.999999+00:00")
    }

    func testParsesWhatKeysatAndOperatorsWrite() {
        let base = Timestamp(rfc3339: "2026-11-29T07:25:05Z")
        XCTAssertEqual(base?.seconds, 1_795_937_105)
        XCTAssertEqual(
            Timestamp(rfc3339: "2026-11-29T07:25:05.5Z")?.microseconds, base!.microseconds + 500_000)
        XCTAssertEqual(
            Timestamp(rfc3339: "2026-11-29T07:25:05.123456789+00:00")?.microseconds,
            base!.microseconds + 123_456)
        XCTAssertEqual(Timestamp(rfc3339: "2026-11-29T09:25:05+02:00"), base)
        XCTAssertEqual(Timestamp(rfc3339: "2026-11-29 07:25:05Z"), base)
        XCTAssertEqual(Timestamp(rfc3339: "2026-11-29")?.rfc3339, "2026-11-29T00:00:00.000000+00:00")
        for bad in [
            "", "2026-13-01", "2026-11-29T25:00:00Z", "2026-11-29T07:25:05", "yesterday",
            "2026-11-29T07:25:05.Z",
        ] {
            XCTAssertNil(Timestamp(rfc3339: bad), bad)
        }
        let now = Timestamp(seconds: 1_000_000)
        XCTAssertEqual(Timestamp(rfc3339: now.rfc3339), now)
    }

    func testStringOrderIsTimeOrder() {
        let moments = [0, 999_999, 1_000_000, 86_400_000_000, 1_795_936_505_123_456].map(
            Timestamp.init(microseconds:))
        XCTAssertEqual(moments.map(\.rfc3339), moments.map(\.rfc3339).sorted())
    }

    func testDurations() {
        XCTAssertEqual(DurationText.seconds("30s"), 30)
        XCTAssertEqual(DurationText.seconds("15m"), 900)
        XCTAssertEqual(DurationText.seconds("24h"), 86_400)
        XCTAssertEqual(DurationText.seconds("7d"), 604_800)
        XCTAssertEqual(DurationText.seconds("45"), 45)
        for bad in ["", "s", "-5s", "1.5h", "5x", "h5", "99999999999999999999d"] {
            XCTAssertNil(DurationText.seconds(bad), bad)
        }
        let now = Timestamp(seconds: 100_000)
        XCTAssertEqual(DurationText.moment("2h", now: now), Timestamp(seconds: 100_000 - 7200))
        XCTAssertEqual(DurationText.moment("1970-01-02T00:00:00Z", now: now), Timestamp(seconds: 86_400))
        XCTAssertNil(DurationText.moment("soon", now: now))
    }
}
