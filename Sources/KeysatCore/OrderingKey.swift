/// Per-subject order (issue 23): a delivery's ordering key, given to keysat-enqueue
/// (`--ordering-key`) or taken from a field of the event's data (an endpoint's `--order-by`).
/// Deliveries of one endpoint with one key go one at a time, in the order of their sequence
/// numbers (1, 2, 3 … per endpoint and key, fixed at enqueue, sent as `X-Keysat-Sequence`).
public enum OrderingKey {
    /// Longest key, in UTF-8 bytes: as an idempotency key (a license id, a customer id).
    public static let maximumBytes = 255
    /// Deepest `--order-by` path, and longest field name in it.
    public static let maximumPathDepth = 8

    /// Checks a key given on the command line.
    /// - Throws: `KeysatError` data (65) saying why `key` is refused.
    public static func validate(_ key: String) throws {
        guard isValid(key) else {
            throw KeysatError(
                .data,
                "ordering key must be 1 to \(maximumBytes) bytes of UTF-8 without control characters (nor U+FFFD, which bytes that are not UTF-8 read as)"
            )
        }
    }

    /// Whether `key` may be a key: what `validate` accepts, and what a derived value must be
    /// to become one (else its delivery is unordered). Not U+FFFD: a command line's bytes that
    /// are not UTF-8 read as it, so `$'\xff'` and `$'\xfe'` would silently be one key.
    public static func isValid(_ key: String) -> Bool {
        !key.isEmpty && key.utf8.count <= maximumBytes
            && !key.unicodeScalars.contains(where: {
                $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0.value == 0xFFFD
            })
    }

    /// The key an endpoint with `--order-by path` gives an event whose data is `data`: the
    /// field's value when it is a string (as decoded) or a number (as written); `nil` (the
    /// delivery is unordered) when the data has no such field, or it is `null`, a boolean, an
    /// array or an object, or a value that cannot be a key (`isValid`).
    public static func derive(from data: [UInt8], path: OrderByPath) -> String? {
        guard let value = JSONStrings.field(data, path: path.keys, booleans: false), isValid(value) else {
            return nil
        }
        return value
    }

    /// `derive` by an endpoint's `order_by` as stored (another program's text that is not a
    /// path derives nothing).
    public static func derive(from data: [UInt8], stored orderBy: String?) -> String? {
        guard let orderBy, let path = OrderByPath(orderBy) else { return nil }
        return derive(from: data, path: path)
    }
}

/// An endpoint's `--order-by`: a field of the event's `data`, dotted for nested objects
/// (`license_id`, `license.id`), as stored in `webhook_endpoints.order_by`.
public struct OrderByPath: Sendable, Equatable, CustomStringConvertible {
    /// The object keys from `data`'s top.
    public let keys: [String]

    /// Reads `license.id`; `nil` when it is not a path.
    public init?(_ text: String) {
        let keys = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !keys.isEmpty, keys.count <= OrderingKey.maximumPathDepth,
            keys.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 64 && $0.utf8.allSatisfy(FieldName.isNameByte) })
        else { return nil }
        self.keys = keys
    }

    /// Reads `--order-by`.
    /// - Throws: `KeysatError` usage (64) naming what is wrong.
    public init(parsing text: String) throws {
        guard let path = OrderByPath(text) else {
            throw KeysatError(
                .usage,
                "'--order-by' must name a field of the event's data, dotted for nested objects (e.g. license_id or license.id): up to \(OrderingKey.maximumPathDepth) names of A-Z a-z 0-9 _ -, not '\(text)'"
            )
        }
        self = path
    }

    public var description: String { keys.joined(separator: ".") }
}
