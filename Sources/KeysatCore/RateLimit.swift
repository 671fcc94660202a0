/// How fast an endpoint may be sent to (`endpoint add|update --rate N/s` or `N/min`), as a
/// token bucket: it holds at most `count` tokens (one period's worth: a burst of at most `count`
/// requests), refills at `count` per period, and each request takes one.
///
/// The bucket's state is kept in the database (`keysat_webhooks_rate_buckets`), not in a run,
/// so that runs started every 30 s by a timer cannot each begin with a full bucket: a request is
/// taken from it before it is sent (`DeliveryStore.claim`), so a run killed afterwards has used
/// its tokens too. In any window of `w` seconds an endpoint gets at most `count + rate × w`
/// requests, across runs and, on PostgreSQL, across hosts.
public struct RateLimit: Sendable, Equatable {
    public enum Period: String, Sendable, Equatable {
        case second = "s"
        case minute = "min"

        public var seconds: Double { self == .second ? 1 : 60 }
    }

    /// Requests per `period`, and the bucket's size.
    public let count: Int
    public let period: Period

    /// At most this many requests a second (`N/s`), or a minute (`N/min`): beyond what a run
    /// could send, and small enough that a bucket's arithmetic in doubles is exact.
    public static let maximumPerSecond = 100_000
    public static let maximumPerMinute = 6_000_000

    /// How long a run waits for an endpoint's next token: one that comes later leaves the
    /// endpoint's deliveries (still due) to a later run, and the run serves the others and
    /// ends rather than sleeping. At least one request a second keeps a run sending at the
    /// endpoint's rate; a slower rate is served by the runs the timer starts, a bucket at a time.
    public static let longestWaitSeconds = 1.0

    public init(count: Int, period: Period) {
        self.count = count
        self.period = period
    }

    /// `N/s` or `N/min` (also `N/sec`, `N/second`, `N/m`, `N/minute`).
    /// - Throws: `KeysatError` (usage, 64) saying what is accepted.
    public init(parsing text: String) throws {
        let parts = text.trimmingSpaces.split(separator: "/", omittingEmptySubsequences: false)
        let refusal = KeysatError(
            .usage,
            "--rate: \(JSONText.string(text)) is not a rate; give N/s (1 to \(Self.maximumPerSecond)) or N/min (1 to \(Self.maximumPerMinute)), such as 10/s or 300/min"
        )
        guard parts.count == 2, parts[0].allSatisfy({ $0.isASCII && $0.isNumber }), parts[0].count <= 8,
            let count = Int(parts[0]), count >= 1
        else { throw refusal }
        let period: Period
        switch parts[1].lowercased() {
        case "s", "sec", "second": period = .second
        case "m", "min", "minute": period = .minute
        default: throw refusal
        }
        guard count <= (period == .second ? Self.maximumPerSecond : Self.maximumPerMinute) else { throw refusal }
        self.init(count: count, period: period)
    }

    /// As stored in `webhook_endpoints.rate_limit` and shown: `10/s`, `300/min`.
    public var description: String { "\(count)/\(period.rawValue)" }
    public var stored: String { description }

    /// Tokens added a second.
    public var perSecond: Double { Double(count) / period.seconds }
    /// The bucket's size: the largest burst.
    public var burst: Double { Double(count) }

    /// The limit a stored value stands for: `nil` when there is none (NULL or empty: Keysat's
    /// rows); `.failure` for a value another program wrote that is not one (the caller says so).
    public static func fromStored(_ text: String?) -> Result<RateLimit, StoredValueError>? {
        guard let text, !text.isEmpty else { return nil }
        guard let limit = try? RateLimit(parsing: text) else { return .failure(.init()) }
        return .success(limit)
    }

    /// A stored value that is not a rate.
    public struct StoredValueError: Error, Sendable {}
}

/// An endpoint's token bucket as of a moment: what runs share through the database.
public struct RateBucket: Sendable, Equatable {
    /// Tokens in the bucket at `asOf` (0 up to the limit's burst).
    public var tokens: Double
    /// Microseconds since the epoch, on the clock of whoever took from it last.
    public var asOf: Int64

    public init(tokens: Double, asOf: Int64) {
        self.tokens = tokens
        self.asOf = asOf
    }

    /// A bucket never taken from: full.
    public static func full(_ limit: RateLimit, at now: Int64) -> RateBucket {
        RateBucket(tokens: limit.burst, asOf: now)
    }

    /// The bucket as stored (another program may have written anything): tokens that are not a
    /// finite number, or a time that is not one, make an empty bucket now (no burst granted on
    /// a value nobody can read); a time after `now` (a clock stepped back) counts as `now`, so
    /// that the bucket refills from there rather than waiting for the clock to come back.
    public static func fromStored(tokens: Double?, asOf: Int64?, now: Int64) -> RateBucket {
        guard let tokens, tokens.isFinite, let asOf else { return RateBucket(tokens: 0, asOf: now) }
        return RateBucket(tokens: tokens, asOf: min(asOf, now))
    }

    /// Takes up to `wanted` whole tokens at `now`: how many were taken, the bucket after, and
    /// when there are none left, how many seconds until the next one.
    public func take(_ wanted: Int, limit: RateLimit, at now: Int64) -> (taken: Int, after: RateBucket, nextInSeconds: Double?) {
        let elapsed = Double(max(0, now - asOf)) / 1_000_000
        let available = min(limit.burst, max(0, tokens) + elapsed * limit.perSecond)
        // A hair under a whole token counts as one: doubles summed over many refills.
        let whole = Int((available + 1e-9).rounded(.down))
        let taken = max(0, min(wanted, whole))
        let left = max(0, available - Double(taken))
        let next: Double? = taken < wanted ? max(0, (1 - left) / limit.perSecond) : nil
        return (taken, RateBucket(tokens: left, asOf: max(now, asOf)), next)
    }
}
