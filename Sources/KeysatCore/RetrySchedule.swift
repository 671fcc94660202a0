/// When a failed delivery is tried again: the delay after each failed attempt, the last
/// failure dead-lettering it. Per endpoint (`endpoint add|update --retry-schedule`).
///
/// Keysat's ladder is the default, exactly (5 s … 2 h, dead at the 10th failure, about
/// 3 h 52 min). `standard` is the Standard Webhooks example (immediately, then 5 s, 5 min,
/// 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h: about three days). Or a list of durations.
public struct RetrySchedule: Sendable, Equatable {
    /// Seconds to wait after failed attempts 1, 2, …; the failure after the last dead-letters.
    public let delays: [Int64]
    /// The preset's name, or `nil` for an explicit list.
    public let preset: String?

    public static let keysat = RetrySchedule(delays: [5, 10, 30, 60, 300, 900, 1800, 3600, 7200], preset: "keysat")
    public static let standard = RetrySchedule(
        delays: [5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400], preset: "standard")
    public static let presets = [keysat, standard]

    /// At most this many retries, each between 1 s and 30 days.
    public static let maximumRetries = 50
    public static let maximumDelaySeconds: Int64 = 30 * 86_400

    init(delays: [Int64], preset: String?) {
        self.delays = delays
        self.preset = preset
    }

    /// A preset's name or a comma-separated list of durations (`5s,1m,10m,1h,6h,1d`).
    /// - Throws: `KeysatError` (usage, 64) saying what is wrong and what is accepted.
    public init(parsing text: String) throws {
        if let preset = Self.presets.first(where: { $0.preset == text }) {
            self = preset
            return
        }
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingSpaces }
        guard !text.isEmpty, items.count <= Self.maximumRetries else {
            throw KeysatError(
                .usage,
                "--retry-schedule: \(text.isEmpty ? "empty" : "more than \(Self.maximumRetries) retries"); give keysat, standard, or a list of up to \(Self.maximumRetries) durations such as 5s,1m,10m,1h,6h,1d")
        }
        var delays: [Int64] = []
        for item in items {
            guard let seconds = DurationText.seconds(item), seconds >= 1, seconds <= Self.maximumDelaySeconds else {
                throw KeysatError(
                    .usage,
                    "--retry-schedule: \(JSONText.string(item)) is not a duration from 1s to 30d; give keysat, standard, or a list such as 5s,1m,10m,1h,6h,1d")
            }
            delays.append(seconds)
        }
        self.init(delays: delays, preset: nil)
    }

    /// The schedule as stored in `webhook_endpoints.retry_schedule`: `nil` for Keysat's ladder
    /// (what Keysat's own rows hold), the preset's name, or the canonical list.
    public var stored: String? { self == .keysat ? nil : description }

    /// The schedule a stored value stands for: `nil` or empty is Keysat's ladder. A value
    /// another program wrote that is not a schedule is `nil` here (the caller says so).
    public static func fromStored(_ text: String?) -> RetrySchedule? {
        guard let text, !text.isEmpty else { return .keysat }
        return try? RetrySchedule(parsing: text)
    }

    /// Attempts made, the first included, before the delivery is dead-lettered.
    public var maximumAttempts: Int { delays.count + 1 }

    /// From the first attempt to the last, without jitter or `Retry-After`.
    public var spanSeconds: Int64 { delays.reduce(0, +) }

    /// The delay after failed attempt number `attempt` (1-based), or `nil` when it was the last.
    public func delay(afterAttempt attempt: Int) -> Int64? {
        guard attempt >= 1, attempt <= delays.count else { return nil }
        return delays[attempt - 1]
    }

    /// For people: the preset's name, or the list in the largest exact units (`5s,1m,1d`).
    public var description: String { preset ?? delays.map(Self.duration).joined(separator: ",") }

    /// `seconds` in its largest exact unit: `90s`, `2m`, `1d`.
    public static func duration(_ seconds: Int64) -> String {
        for (unit, size) in [("d", Int64(86_400)), ("h", 3600), ("m", 60)] where seconds > 0 && seconds % size == 0 {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }

    /// A span for people, two largest units: `3h 51m`, `3d 3h`, `45s`.
    public static func span(_ seconds: Int64) -> String {
        let parts = [("d", seconds / 86_400), ("h", seconds % 86_400 / 3600), ("m", seconds % 3600 / 60), ("s", seconds % 60)]
        let shown = parts.drop { $0.1 == 0 }.prefix(2).filter { $0.1 != 0 }
        return shown.isEmpty ? "0s" : shown.map { "\($0.1)\($0.0)" }.joined(separator: " ")
    }

    /// The moment of the next attempt after a failure at `now` that waits `delay` seconds,
    /// spread by up to `jitterPercent` % of the delay either way (`unit` is uniform in [0, 1)),
    /// never sooner than a second after `now`.
    public static func next(
        after now: Timestamp, delay: Int64, jitterPercent: Int, unit: @autoclosure () -> Double
    ) -> Timestamp {
        guard jitterPercent > 0 else { return now.adding(seconds: delay) }
        let spread = Double(delay) * 1_000_000 * Double(min(jitterPercent, 100)) / 100
        let offset = Int64((unit() * 2 - 1) * spread)
        return Timestamp(microseconds: now.microseconds + max(delay * 1_000_000 + offset, 1_000_000))
    }
}
