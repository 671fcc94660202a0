#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A moment in UTC with microsecond precision.
///
/// Stored as RFC 3339 text, fixed-width (`2026-11-29T07:25:05.123456+00:00`), so that string
/// order is time order in SQL.
public struct Timestamp: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// Microseconds since 1970-01-01T00:00:00Z.
    public var microseconds: Int64

    public init(microseconds: Int64) { self.microseconds = microseconds }
    public init(seconds: Int64) { self.microseconds = seconds * 1_000_000 }

    /// Whole seconds since the epoch, rounded down.
    public var seconds: Int64 {
        microseconds >= 0 ? microseconds / 1_000_000 : (microseconds - 999_999) / 1_000_000
    }

    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.microseconds < b.microseconds }

    /// This moment plus `seconds` seconds.
    public func adding(seconds: Int64) -> Timestamp {
        Timestamp(microseconds: microseconds + seconds * 1_000_000)
    }

    /// The fixed-width RFC 3339 text written to the database.
    public var rfc3339: String {
        let secs = seconds
        let micros = Int(microseconds - secs * 1_000_000)
        var days = secs / 86_400
        var rest = Int(secs - days * 86_400)
        if rest < 0 {
            rest += 86_400
            days -= 1
        }
        let (year, month, day) = Timestamp.civil(fromDays: days)
        // Written digit by digit into 32 bytes: this runs for every outcome a run records.
        return String(unsafeUninitializedCapacity: 32) { out in
            var position = 0
            func put(_ value: Int, _ width: Int) {
                var remaining = value
                for offset in stride(from: width - 1, through: 0, by: -1) {
                    out[position + offset] = UInt8(48 + remaining % 10)
                    remaining /= 10
                }
                position += width
            }
            func put(_ byte: Unicode.Scalar) {
                out[position] = UInt8(truncatingIfNeeded: byte.value)  // ASCII: one byte
                position += 1
            }
            put(year, 4)
            put("-")
            put(month, 2)
            put("-")
            put(day, 2)
            put("T")
            put(rest / 3600, 2)
            put(":")
            put(rest / 60 % 60, 2)
            put(":")
            put(rest % 60, 2)
            put(".")
            put(micros, 6)
            put("+")
            put(0, 2)
            put(":")
            put(0, 2)
            return position
        }
    }

    public var description: String { rfc3339 }

    // MARK: - Parsing

    /// Parses RFC 3339 (`2026-11-29T07:25:05Z`, with 0–9 fraction digits and any offset;
    /// a space may stand for the `T`, and a date alone means its midnight UTC).
    public init?(rfc3339 text: String) {
        var text = text
        guard let parsed = text.withUTF8({ Timestamp(rfc3339Bytes: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = parsed
    }

    /// `init(rfc3339:)` on bytes as stored, without making a String of them (a run checks the
    /// time of every due row it reads).
    public init?(rfc3339Bytes b: UnsafeRawBufferPointer) {
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var value = 0
            for byte in b[from..<from + count] {
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard let year = number(0, 4), b.count >= 10, b[4] == 45, let month = number(5, 2),
            b[7] == 45, let day = number(8, 2), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var seconds = Timestamp.days(fromYear: year, month: month, day: day) * 86_400
        if b.count == 10 {
            self.init(seconds: seconds)
            return
        }
        guard b.count >= 20, b[10] == 84 || b[10] == 116 || b[10] == 32, let hour = number(11, 2),
            b[13] == 58, let minute = number(14, 2), b[16] == 58, let second = number(17, 2),
            hour < 24, minute < 60, second < 61
        else { return nil }
        seconds += Int64(hour * 3600 + minute * 60 + second)
        var index = 19
        var micros: Int64 = 0
        if b[index] == 46 {
            index += 1
            var digits = 0
            while index < b.count, b[index] >= 48, b[index] <= 57 {
                if digits < 6 { micros = micros * 10 + Int64(b[index] - 48) }
                digits += 1
                index += 1
            }
            guard digits >= 1, digits <= 9 else { return nil }
            for _ in min(digits, 6)..<6 { micros *= 10 }
        }
        guard index < b.count else { return nil }
        if b[index] == 90 || b[index] == 122 {
            guard index + 1 == b.count else { return nil }
        } else {
            guard b[index] == 43 || b[index] == 45, index + 6 == b.count,
                let offsetHours = number(index + 1, 2), b[index + 3] == 58,
                let offsetMinutes = number(index + 4, 2)
            else { return nil }
            let offset = Int64(offsetHours * 3600 + offsetMinutes * 60)
            seconds -= b[index] == 43 ? offset : -offset
        }
        self.init(microseconds: seconds * 1_000_000 + micros)
    }

    // MARK: - Calendar arithmetic (proleptic Gregorian; H. Hinnant's algorithms)

    static func days(fromYear year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays days: Int64) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day))
    }
}

/// Where the current time comes from; tests pass a fixed one.
///
/// Two readings: `now()`, the wall clock, for what is stored and shown (when a delivery is due,
/// when an attempt started); `elapsed()`, a clock that only goes forward, for every duration and
/// deadline (`--max-runtime`, `--linger`, the commit interval): NTP may step the wall clock back
/// an hour, and a deadline on it would then hold the lock for that hour (issue 20).
public protocol TimeSource: Sendable {
    func now() -> Timestamp
    /// Microseconds on a clock that never steps back, from an arbitrary origin: compare two
    /// readings, never store one.
    func elapsed() -> Int64
}

extension TimeSource {
    /// A clock made for tests moves only when the test moves it: its wall time is its
    /// monotonic time too.
    public func elapsed() -> Int64 { now().microseconds }
}

/// The system's clocks: CLOCK_REALTIME for moments, CLOCK_MONOTONIC for durations.
public struct SystemClock: TimeSource {
    public init() {}
    public func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(microseconds: Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000)
    }
    public func elapsed() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000
    }
}

/// A clock that always says the same moment, or advances when told to.
///
/// Its monotonic reading moves forward with `current` and stays put when `current` is set
/// back: as a host's clocks do when NTP steps the wall clock back.
public final class FixedClock: TimeSource, @unchecked Sendable {
    // Unchecked: tests use it from one thread only; it is never shared across threads.
    public var current: Timestamp {
        didSet { monotonic += max(0, current.microseconds - oldValue.microseconds) }
    }
    private var monotonic: Int64
    public init(_ current: Timestamp) {
        self.current = current
        monotonic = current.microseconds
    }
    public func now() -> Timestamp { current }
    public func elapsed() -> Int64 { monotonic }
}
