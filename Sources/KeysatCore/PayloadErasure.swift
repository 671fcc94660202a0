/// What an erased payload is replaced with, and which payloads `deliveries erase --where`
/// selects: the one definition, used by both backends and the commands that show rows.
///
/// The marker is `{"erased":true,"erased_at":"T"}`, T the moment of the erasure
/// (`Timestamp.rfc3339`). It stays valid JSON, since other tools read `payload_json`, and it
/// begins as no envelope does (`{"event_type":…` always comes first there), so a row is
/// erased exactly when its payload begins with `markerPrefix`. The row's other columns (event
/// type, endpoint, times, status, attempt history) are kept: counts and audits still work.
public enum PayloadErasure {
    /// The text every marker begins with.
    public static let markerPrefix = #"{"erased":true,"erased_at":""#

    /// The marker written in place of a payload erased at `moment`.
    public static func marker(at moment: Timestamp) -> String {
        markerPrefix + moment.rfc3339 + #""}"#
    }

    /// Whether `payload` is an erasure marker.
    public static func isErased(_ payload: [UInt8]) -> Bool {
        payload.starts(with: markerPrefix.utf8)
    }

    /// When the payload was erased, from its marker; `nil` for a payload that is not one.
    public static func erasedAt(_ payload: [UInt8]) -> String? {
        guard isErased(payload) else { return nil }
        return String(
            decoding: payload.dropFirst(markerPrefix.utf8.count).prefix { $0 != UInt8(ascii: "\"") },
            as: UTF8.self)
    }

    /// The SQL condition "the payload of table `alias` is erased" (SQLite and PostgreSQL
    /// alike: markers are written as text); false, never NULL, for a NULL payload.
    public static func condition(_ alias: String = "d") -> String {
        let d = alias.isEmpty ? "" : alias + "."
        return "coalesce(substr(\(d)payload_json, 1, \(markerPrefix.utf8.count)) = '\(markerPrefix)', FALSE)"
    }

    /// The `last_error` of a pending delivery dead-lettered by an erasure.
    public static let reason = "erased"

    /// The refusal to send an erased delivery again (`deliveries retry`), the same on every backend.
    public static func refusal(_ ids: [String]) -> KeysatError {
        KeysatError(
            .data,
            "the payload of delivery \(ids.prefix(3).joined(separator: ", "))\(ids.count > 3 ? ", …" : "") was erased: it cannot be sent again (nothing was re-queued)"
        )
    }

    /// A selection of `deliveries erase --where data.PATH=VALUE`: a field of the event's
    /// data (dotted for nested objects) and the value it must have. A string field matches its
    /// text exactly; a number or a boolean matches its JSON text (`42`, `true`).
    public struct Match: Sendable, Equatable {
        /// The keys from the envelope's top: `["data", "customer_email"]`.
        public var path: [String]
        public var value: String

        /// Reads `data.PATH=VALUE`.
        /// - Throws: `KeysatError` usage (64) naming what is wrong.
        public init(parsing text: String) throws {
            guard let equals = text.firstIndex(of: "=") else {
                throw KeysatError(
                    .usage, "'--where' must be data.FIELD=VALUE (e.g. data.customer_email=alice@example.com)")
            }
            let keys = text[..<equals].split(separator: ".", omittingEmptySubsequences: false).map(
                String.init)
            guard keys.count >= 2, keys[0] == "data" else {
                throw KeysatError(
                    .usage,
                    "'--where' must name a field of the event's data: data.FIELD=VALUE, dotted for nested fields"
                )
            }
            for key in keys.dropFirst() where key.isEmpty || !key.utf8.allSatisfy(FieldName.isNameByte) {
                throw KeysatError(
                    .usage, "'--where': field \(JSONText.string(key)) must be 1 or more of A-Z a-z 0-9 _ -")
            }
            path = keys
            value = String(text[text.index(after: equals)...])
            if value.isEmpty { throw KeysatError(.usage, "'--where' has no value after '='") }
        }

        /// SQLite's JSON path: `$."data"."customer_email"` (keys are quoted, and hold no quote).
        public var sqlitePath: String { "$" + path.map { ".\"\($0)\"" }.joined() }
    }
}
