/// An endpoint's content filter (issue 23): a JSON object whose fields must match the event's
/// envelope (`Envelope`: `event_type`, `timestamp`, `data`, and `test` in a sample), compiled
/// once and then matched against each event (`matches`). man/keysat-webhooks.7, FILTERS, is
/// the reference; the rules, MongoDB's and Outpost's where they agree:
///
/// - `{"data": {"plan": "pro"}}`: nested objects match recursively; a field the filter does not
///   name is not constrained; keys are member names, not dotted paths.
/// - A value that is not an object is `$eq` to it; an object whose keys all begin with `$` is a
///   set of operators, all of which must hold (`$eq $ne $in $nin $gt $gte $lt $lte $exists
///   $startsWith`, and `$not` over such a value); `$and`, `$or` and `$not` combine filters.
/// - No coercion: `1` never equals `"1"`; `$gt` and its kin compare numbers with numbers
///   (exactly, `JSONNumber`) and strings with strings (by Unicode scalar), and nothing else.
/// - A field holding an array matches a condition when an element does (`{"tags": "vip"}`), or
///   for `$eq`/`$in`, when the whole array is the value given.
/// - An absent field matches only `$exists: false` and the negations (`$ne`, `$nin`, `$not`).
///
/// Anything else is refused when the filter is given, naming where (`at data.plan: unknown
/// operator '$regex'`): a filter that means something else than it seems would leak events or
/// lose them. Size and nesting are bounded: a filter is set by an operator but may be read
/// from a row another program wrote.
public struct EventFilter: Sendable {
    /// Filters longer than this are refused (bytes of JSON text).
    public static let maximumBytes = 8192
    /// Objects and arrays nested deeper than this in a filter are refused.
    public static let maximumDepth = 32

    /// A condition on an object (the envelope, or an object inside it).
    ///
    /// Conjunctions and disjunctions are pairs (`both`, `either`), not arrays of clauses: an
    /// array of a new element type costs keysat-enqueue's start the runtime's instantiation of
    /// its metadata at the first filter (callgrind: 11,000 instructions each for `[Clause]` and
    /// `[Condition]`), and a filter has few of them. Only the cases that hold their own kind
    /// are boxed (`indirect`); boxing every case was an allocation per clause.
    enum Clause: Sendable {
        /// Holds on anything: the empty filter `{}`.
        case always
        case field(String, Condition)
        indirect case both(Clause, Clause)
        indirect case either(Clause, Clause)
        indirect case not(Clause)

        /// `self` and `next`, `always` dropped.
        func and(_ next: Clause) -> Clause {
            if case .always = self { return next }
            return .both(self, next)
        }
    }

    /// A condition on one field's value, which may be absent.
    enum Condition: Sendable {
        case equal(JSONValue)
        case oneOf([JSONValue])
        case compare(Comparison, JSONValue)
        case exists(Bool)
        case startsWith(String)
        /// An object on which the clause holds.
        indirect case object(Clause)
        indirect case both(Condition, Condition)
        indirect case not(Condition)
    }

    enum Comparison: Sendable {
        case greater, greaterOrEqual, less, lessOrEqual
    }

    let clause: Clause

    /// The filter as given, for `text`.
    private let value: JSONValue

    /// The filter as stored: compact JSON text of the filter as given. Computed when asked:
    /// keysat-enqueue compiles filters and never needs it.
    public var text: String { value.text }

    /// Compiles a filter.
    /// - Throws: `KeysatError` (data, 65): `filter: at PATH: what is wrong`.
    public init(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard bytes.count <= Self.maximumBytes else {
            throw KeysatError(.data, "filter: longer than \(Self.maximumBytes) bytes")
        }
        let value: JSONValue
        do {
            value = try JSONValue(parsing: bytes)
        } catch {
            throw KeysatError(.data, "filter: not valid JSON: \(error)")
        }
        let compiler = FilterCompiler()
        clause = try compiler.compile(value, text: bytes)
        self.value = value
    }

    /// Whether `envelope` (`envelope(eventType:timestamp:data:test:)`) passes the filter.
    public func matches(_ envelope: JSONValue) -> Bool { Self.holds(clause, on: envelope) }

    /// Whether stored text (another program may have written it) is a filter this program reads.
    public static func isReadable(_ text: String) -> Bool { (try? EventFilter(text)) != nil }

    /// The envelope `Envelope.make` writes, as values; `nil` when `data` is not JSON (it has
    /// been validated: never).
    public static func envelope(eventType: String, timestamp: Timestamp, data: [UInt8], test: Bool = false)
        -> JSONValue?
    {
        guard let parsed = try? JSONValue(parsing: data) else { return nil }
        var keys = ["event_type", "timestamp", "data"]
        var values: [JSONValue] = [.string(eventType), .string(timestamp.rfc3339), parsed]
        if test {
            keys.append("test")
            values.append(.bool(true))
        }
        return .object(keys: keys, values: values)
    }
}
