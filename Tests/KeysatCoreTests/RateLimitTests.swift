import KeysatCore
import XCTest

/// The token bucket's arithmetic, by hand-worked numbers (the receiver-side checks are in the
/// end-to-end `RateLimitTests`).
final class RateLimitTests: XCTestCase {
    private let second: Int64 = 1_000_000

    func testRatesAreParsedStrictlyAndStoredCanonically() throws {
        XCTAssertEqual(try RateLimit(parsing: "5/s"), RateLimit(count: 5, period: .second))
        XCTAssertEqual(try RateLimit(parsing: "300/min").stored, "300/min")
        XCTAssertEqual(try RateLimit(parsing: "7/second").stored, "7/s")
        XCTAssertEqual(try RateLimit(parsing: "100000/s").perSecond, 100_000)
        XCTAssertEqual(try RateLimit(parsing: "30/min").perSecond, 0.5)
        for bad in ["", "0/s", "-1/s", "+1/s", "1.5/s", "5", "5/h", "/s", "5/", "1e3/s", "100001/s", "6000001/min", "٣/s"] {
            XCTAssertThrowsError(try RateLimit(parsing: bad), bad) {
                XCTAssertEqual(($0 as? KeysatError)?.kind, .usage, bad)
            }
        }
        XCTAssertNil(RateLimit.fromStored(nil))
        XCTAssertNil(RateLimit.fromStored(""))
        guard case .failure = RateLimit.fromStored("fast") else { return XCTFail("a stored value that is not a rate") }
    }

    func testABucketGivesItsBurstThenTheRate() {
        let limit = RateLimit(count: 5, period: .second)
        var bucket = RateBucket.full(limit, at: 0)
        var (taken, after, next) = bucket.take(8, limit: limit, at: 0)
        XCTAssertEqual(taken, 5)
        XCTAssertEqual(next!, 0.2, accuracy: 1e-9, "one token every 200 ms")
        bucket = after
        (taken, after, next) = bucket.take(1, limit: limit, at: second / 10)
        XCTAssertEqual(taken, 0)
        XCTAssertEqual(next!, 0.1, accuracy: 1e-9)
        (taken, after, next) = bucket.take(3, limit: limit, at: 2 * second / 5)
        XCTAssertEqual(taken, 2, "0.4 s: two tokens")
        XCTAssertEqual(after.tokens, 0, accuracy: 1e-9)
        // Never more than the burst, however long it rested.
        (taken, _, _) = after.take(100, limit: limit, at: 3600 * second)
        XCTAssertEqual(taken, 5)
    }

    func testStoredStateNobodyCanReadGrantsNoBurstAndAClockSteppedBackDoesNotStarve() {
        let limit = RateLimit(count: 10, period: .second)
        for tokens in [Double.nan, .infinity, nil] {
            let bucket = RateBucket.fromStored(tokens: tokens, asOf: 5 * second, now: 5 * second)
            XCTAssertEqual(bucket.take(10, limit: limit, at: 5 * second).taken, 0, "\(String(describing: tokens))")
        }
        XCTAssertEqual(RateBucket.fromStored(tokens: 3, asOf: nil, now: 0).tokens, 0)
        // Written at 100 s by a clock now back at 10 s: refills from now, not from 100 s.
        let stepped = RateBucket.fromStored(tokens: 0, asOf: 100 * second, now: 10 * second)
        XCTAssertEqual(stepped.take(1, limit: limit, at: 10 * second + second / 10).taken, 1)
        // Negative tokens another program wrote count as none.
        XCTAssertEqual(RateBucket(tokens: -50, asOf: 0).take(1, limit: limit, at: second / 10).taken, 1)
    }
}
