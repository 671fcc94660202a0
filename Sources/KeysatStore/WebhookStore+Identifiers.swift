public import KeysatCore

/// Ids as people type them: the whole id, or a prefix that only one row has (like git's
/// abbreviated commit names), so that the short ids tables print can be used.
extension WebhookStore {
    /// What an id names.
    public enum Record: Sendable {
        case delivery
        case endpoint

        /// The table its rows are in (the same name in every backend).
        public var table: String { self == .delivery ? "webhook_deliveries" : "webhook_endpoints" }
        var word: String { self == .delivery ? "delivery" : "endpoint" }
        var listing: String { self == .delivery ? "deliveries list" : "endpoint list" }
    }

    /// The one id of `kind` that is `text` or starts with it.
    /// - Throws: `KeysatError` (data, 65) naming the candidates when several match, and when none does.
    public func fullID(of kind: Record, _ text: String) throws -> String {
        let exact = try database.prepare("SELECT id FROM \(kind.table) WHERE id = ?").first([.text(text)]) {
            $0.string(0)
        }
        if let exact { return exact }
        // A range on the primary key's index (LIKE could not use it).
        var candidates: [String] = []
        if let (lower, upper) = Self.prefixRange(text) {
            candidates = try database.prepare(
                "SELECT id FROM \(kind.table) WHERE id > ?1 AND id < ?2 ORDER BY id LIMIT 6"
            ).rows([.text(lower), .text(upper)]) { $0.string(0) }
        }
        return try Self.uniqueID(of: kind, text, candidates: candidates)
    }

    /// The bounds, both exclusive, of the ids that begin with `text` and are longer, in byte
    /// order: ids are ASCII, and the character after the prefix's last one bounds them. `nil`
    /// when `text` cannot be such a prefix (not ASCII at its end, or longer than any id).
    public static func prefixRange(_ text: String) -> (lower: String, upper: String)? {
        guard let last = text.unicodeScalars.last, last.isASCII, last.value < 0x7F, text.utf8.count <= 64
        else {
            return nil
        }
        return (text, String(text.unicodeScalars.dropLast()) + String(Unicode.Scalar(UInt8(last.value + 1))))
    }

    /// The one id among `candidates` (the first six ids in `prefixRange(text)`, in order), or
    /// the error every backend gives.
    /// - Throws: `KeysatError` (data, 65) naming the candidates when several match, and when none does.
    public static func uniqueID(of kind: Record, _ text: String, candidates: [String]) throws -> String {
        switch candidates.count {
        case 1:
            return candidates[0]
        case 0:
            throw KeysatError(
                .data,
                "no \(kind.word) with id or id prefix \(JSONText.string(text)) (see 'keysat-webhooks \(kind.listing)')",
                errno: nil)
        default:
            let shown = candidates.prefix(5).joined(separator: ", ") + (candidates.count > 5 ? ", …" : "")
            throw KeysatError(
                .data,
                "\(kind.word) id prefix \(JSONText.string(text)) is ambiguous: it matches \(shown); give more characters",
                errno: nil)
        }
    }
}
