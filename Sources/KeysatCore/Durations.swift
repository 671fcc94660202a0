/// Durations as operators write them: `30s`, `15m`, `24h`, `7d`, or plain seconds.
public enum DurationText {
    /// The longest duration any option takes: 100 years. Every duration is then a number of
    /// microseconds that fits an `Int64` with room to add it to any time, so no arithmetic on a
    /// duration from the command line can overflow (a longer one is refused, 64).
    public static let maximumSeconds: Int64 = 100 * 366 * 86_400

    /// The number of seconds `text` stands for, or `nil` if it is not a duration (or is longer
    /// than `maximumSeconds`).
    public static func seconds(_ text: String) -> Int64? {
        guard let last = text.last else { return nil }
        let multiplier: Int64
        var digits = Substring(text)
        switch last {
        case "s": multiplier = 1
        case "m": multiplier = 60
        case "h": multiplier = 3600
        case "d": multiplier = 86_400
        case "w": multiplier = 604_800
        default:
            guard last.isASCII, last.isNumber else { return nil }
            multiplier = 1
        }
        if !last.isNumber { digits = digits.dropLast() }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            let value = Int64(digits)
        else { return nil }
        let (result, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow || result > maximumSeconds ? nil : result
    }

    /// A moment given as RFC 3339 text or as an age before `now` (`2h`, `7d`).
    public static func moment(_ text: String, now: Timestamp) -> Timestamp? {
        if let age = seconds(text) { return now.adding(seconds: -age) }
        return Timestamp(rfc3339: text)
    }
}

extension DurationText {
    /// Like `seconds(_:)`, but a plain number may have a fraction (`0.5`).
    public static func fractionalSeconds(_ text: String) -> Double? {
        if let whole = seconds(text) { return Double(whole) }
        guard text.utf8.count <= 32, text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
            let value = Double(text), value.isFinite, value >= 0, value <= Double(maximumSeconds)
        else { return nil }
        return value
    }
}

extension DurationText {
    /// The one check every duration option goes through: `text` as seconds, refused (usage, 64)
    /// unless it is a duration of at least `minimum` seconds, or zero where `zero` says what zero
    /// means there ("never", "do not wait").
    ///
    /// A minimum because each option feeds something that reads small values its own way: libcurl
    /// takes a timeout in whole milliseconds and reads 0 as "no timeout", so `--timeout 0.0001`
    /// once became a run that waited for ever on a hanging receiver (issue 20).
    ///
    /// - Throws: `KeysatError` (usage) naming the option and what it takes.
    /// With `whole`, only whole seconds are taken (what feeds a count of seconds).
    public static func option(
        _ text: String, named option: String, minimum: Double = 0.001, zero: String? = nil, whole: Bool = false
    ) throws -> Double {
        let value = whole ? seconds(text).map(Double.init) : fractionalSeconds(text)
        if let seconds = value, seconds >= minimum || (seconds == 0 && zero != nil) {
            return seconds
        }
        let least = minimum < 1 ? "\(Int((minimum * 1000).rounded(.up)))ms" : "\(Int(minimum))s"
        let zeroText = zero.map { " (or 0: \($0))" } ?? ""
        let examples = whole ? "such as 300, 30s, 5m or 7d" : "such as 10, 0.5, 30s or 2m"
        throw KeysatError(
            .usage,
            "'\(option)' must be a\(whole ? " whole" : "") duration of at least \(least)\(zeroText), \(examples), not \(JSONText.string(text))"
        )
    }

    /// `seconds` as whole milliseconds, rounded up, at least 1: what a time limit in
    /// milliseconds must be (0 would mean none to libcurl).
    public static func milliseconds(_ seconds: Double) -> Int {
        max(1, Int(min((seconds * 1000).rounded(.up), Double(maximumSeconds) * 1000)))
    }
}
