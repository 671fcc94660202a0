import KeysatCore
import XCTest

final class EventSubscriptionTests: XCTestCase {
    func testAPatternMatchesWholeSegmentsAfterItsPrefix() {
        let cases: [(String, String, Bool)] = [
            ("license.*", "license.issued", true), ("license.*", "license.a.b", true),
            ("license.*", "license", false), ("license.*", "licenses.x", false),
            ("license.*", "license.", false),
            ("license.a.*", "license.a.b", true), ("license.a.*", "license.ab", false),
            ("*", "license.issued", true), ("*", "webhook.delivery.dead", false), ("*", "webhooks.x", true),
            ("webhook.*", "webhook.delivery.dead", true),
            ("webhook.delivery.dead", "webhook.delivery.dead", true),
            ("license.issued", "license.issued", true), ("license.issued", "license.issued.x", false),
        ]
        for (entry, type, expected) in cases {
            XCTAssertEqual(EventSubscription.matches(entry, type), expected, "\(entry) \(type)")
        }
    }

    func testOnlyATrailingDotStarAfterAValidPrefixIsAPattern() {
        for entry in ["*", "license.*", "a.*", "webhook.*", "license.issued"] {
            XCTAssertNoThrow(try EventSubscription.validate(entry), entry)
        }
        for entry in ["lic*", "license.*.*", "*.x", ".*", "license..*", "a*b", "**", "-x.*", "a b.*"] {
            XCTAssertThrowsError(try EventSubscription.validate(entry), entry) {
                XCTAssertEqual(($0 as? KeysatError)?.exitCode, 64, entry)
            }
        }
        XCTAssertThrowsError(try EventSubscription.validate("bad name")) {
            XCTAssertEqual(($0 as? KeysatError)?.exitCode, 65)
        }
    }

    func testAFailingLevelIsSaidOncePerStreak() {
        let since = Timestamp(microseconds: 1_000_000)
        let said = OperationalEvent.failingLevel(since: since, percent: 50)
        XCTAssertFalse(OperationalEvent.failingLevelPasses(said, since: since, percent: 50))
        XCTAssertTrue(OperationalEvent.failingLevelPasses(said, since: since, percent: 90))
        XCTAssertTrue(
            OperationalEvent.failingLevelPasses(said, since: Timestamp(microseconds: 2_000_000), percent: 50))
        XCTAssertTrue(OperationalEvent.failingLevelPasses("", since: since, percent: 50))
    }
}
