public import KeysatCore
import KeysatStore

/// The `Retry-After` header of a 429 or 503 answer (RFC 9110, section 10.2.3).
public enum RetryAfter {
    /// When the receiver asks to be tried again: delay-seconds or an HTTP-date
    /// (`Sun, 06 Nov 1994 08:49:37 GMT`); `nil` when the value is neither.
    public static func moment(_ value: String, now: Timestamp) -> Timestamp? {
        let text = value.trimmingSpaces
        if !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }), let seconds = Int64(text.prefix(12))
        {
            return now.adding(seconds: seconds)
        }
        // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
        let parts = text.split(separator: " ")
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]),
            let month = months.firstIndex(of: String(parts[2])), let year = Int(parts[3])
        else { return nil }
        let time = parts[4].split(separator: ":")
        guard time.count == 3, let hour = Int(time[0]), let minute = Int(time[1]), let second = Int(time[2])
        else {
            return nil
        }
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : String(n) }
        return Timestamp(
            rfc3339: "\(year)-\(two(month + 1))-\(two(day))T\(two(hour)):\(two(minute)):\(two(second))Z")
    }

    /// The next attempt after a 429 or 503 with `Retry-After`: the later of the backoff and
    /// the receiver's wish, but never more than twice the backoff's delay after `now`.
    public static func schedule(backoff: Timestamp, requested: Timestamp?, now: Timestamp) -> Timestamp {
        guard let requested, requested > backoff else { return backoff }
        let cap = now.adding(seconds: 0).microseconds + 2 * (backoff.microseconds - now.microseconds)
        return Timestamp(microseconds: min(requested.microseconds, cap))
    }
}
