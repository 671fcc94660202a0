import KeysatCore
import XCTest

/// `RetrySchedule` against the published ladders (Keysat's daemon's, the Standard Webhooks
/// example as its specification lists it) and the jitter's bounds at its extremes.
final class RetryScheduleUnitTests: XCTestCase {
    func testThePresetsAreThePublishedLadders() throws {
        // Keysat's daemon: 5 s, 10 s, 30 s, 1 min, 5 min, 15 min, 30 min, 1 h, 2 h; dead at the 10th.
        XCTAssertEqual(try RetrySchedule(parsing: "keysat").delays, [5, 10, 30, 60, 300, 900, 1800, 3600, 7200])
        XCTAssertEqual(RetrySchedule.keysat.maximumAttempts, 10)
        // Standard Webhooks: "immediately, 5 seconds, 5 minutes, 30 minutes, 2 hours, 5 hours,
        // 10 hours, 14 hours, 20 hours, 24 hours" (the first is the first attempt).
        let minute: Int64 = 60
        let hour: Int64 = 3600
        let published: [Int64] = [5, 5 * minute, 30 * minute, 2 * hour, 5 * hour, 10 * hour, 14 * hour, 20 * hour, 24 * hour]
        XCTAssertEqual(try RetrySchedule(parsing: "standard").delays, published)
        XCTAssertEqual(RetrySchedule.standard.maximumAttempts, 10)
        XCTAssertNil(RetrySchedule.keysat.stored, "Keysat's ladder is stored as NULL")
        XCTAssertEqual(RetrySchedule.standard.stored, "standard")
    }

    func testListsAreReadInAnyUnitAndWrittenInTheLargestExactOne() throws {
        let schedule = try RetrySchedule(parsing: " 5s, 60s,90s ,3600,2d,1w")
        XCTAssertEqual(schedule.delays, [5, 60, 90, 3600, 172_800, 604_800])
        XCTAssertEqual(schedule.stored, "5s,1m,90s,1h,2d,7d")
        XCTAssertEqual(try RetrySchedule(parsing: schedule.stored!), schedule, "what is stored reads back the same")
        XCTAssertEqual(schedule.maximumAttempts, 7)
        XCTAssertEqual(schedule.delay(afterAttempt: 6), 604_800)
        XCTAssertNil(schedule.delay(afterAttempt: 7))
        XCTAssertEqual(RetrySchedule.span(13_905), "3h 51m")
        XCTAssertEqual(RetrySchedule.span(86_400 * 3 + 60), "3d")
        for bad in ["", ",", "5s,", "0", "0s", "31d", "5x", "fast", "1.5s", "-1s"] {
            XCTAssertThrowsError(try RetrySchedule(parsing: bad), bad)
        }
        XCTAssertNil(RetrySchedule.fromStored("every tuesday"))
        XCTAssertEqual(RetrySchedule.fromStored(nil), .keysat)
        XCTAssertEqual(RetrySchedule.fromStored(""), .keysat)
    }

    func testJitterStaysWithinItsPercentageAndNeverBeforeASecond() {
        let now = Timestamp(seconds: 1_800_000_000)
        let at = { (delay: Int64, percent: Int, unit: Double) -> Int64 in
            RetrySchedule.next(after: now, delay: delay, jitterPercent: percent, unit: unit).microseconds - now.microseconds
        }
        XCTAssertEqual(at(100, 0, 0.999), 100_000_000, "no jitter: the exact time, whatever the draw")
        XCTAssertEqual(at(100, 20, 0), 80_000_000)
        XCTAssertEqual(at(100, 20, 0.5), 100_000_000)
        XCTAssertEqual(at(100, 20, 0.999_999), 119_999_960, accuracy: 1)
        XCTAssertEqual(at(5, 100, 0), 1_000_000, "never sooner than a second")
        XCTAssertEqual(at(5, 100, 0.75), 7_500_000)
    }
}
