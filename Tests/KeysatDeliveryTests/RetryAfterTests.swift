import KeysatCore
import KeysatDelivery
import KeysatStore
import XCTest

final class RetryAfterTests: XCTestCase {
    let now = Timestamp(seconds: 1_000_000)

    func testParsesSecondsAndHTTPDates() {
        XCTAssertEqual(RetryAfter.moment("120", now: now), now.adding(seconds: 120))
        XCTAssertEqual(RetryAfter.moment(" 7 ", now: now), now.adding(seconds: 7))
        XCTAssertEqual(RetryAfter.moment("8\r\n", now: now), now.adding(seconds: 8), "as a header line ends")
        XCTAssertEqual(
            RetryAfter.moment("Sun, 06 Nov 1994 08:49:37 GMT", now: now),
            Timestamp(rfc3339: "1994-11-06T08:49:37Z"))
        for bad in [
            "", "soon", "-5", "1.5", "Sun, 06 Nov 1994 08:49:37 PST", "Sun, 06 Foo 1994 08:49:37 GMT",
        ] {
            XCTAssertNil(RetryAfter.moment(bad, now: now), bad)
        }
    }

    func testTheLaterOfBackoffAndRequestCappedAtTwiceTheDelay() {
        let backoff = now.adding(seconds: 5)
        XCTAssertEqual(
            RetryAfter.schedule(backoff: backoff, requested: now.adding(seconds: 8), now: now),
            now.adding(seconds: 8))
        XCTAssertEqual(
            RetryAfter.schedule(backoff: backoff, requested: now.adding(seconds: 3600), now: now),
            now.adding(seconds: 10))
        XCTAssertEqual(
            RetryAfter.schedule(backoff: backoff, requested: now.adding(seconds: 2), now: now), backoff)
        XCTAssertEqual(RetryAfter.schedule(backoff: backoff, requested: nil, now: now), backoff)
    }
}
