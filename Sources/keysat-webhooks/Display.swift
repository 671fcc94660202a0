import KeysatCommandLine
import KeysatCommandTree
import KeysatCore
import KeysatDelivery
import KeysatReceiver
import KeysatStore

/// How tables show values to a person: short ids and relative times by default, so that a table
/// fits 100 columns; `--wide` shows them whole.
enum Display {
    /// Columns a table may take by default.
    static let width = 100

    /// An id as tables print it: its first 8 characters, which every command takes as a prefix.
    static func id(_ id: String, wide: Bool) -> String { wide ? id : String(id.prefix(8)) }

    /// A stored time, or "-": as stored with `wide`, else relative to `now` ("5m ago", "in 30s").
    static func moment(_ text: String?, now: Timestamp, wide: Bool) -> String {
        guard let text else { return "-" }
        guard !wide, let moment = Timestamp(rfc3339: text) else { return text }
        let seconds = (moment.microseconds - now.microseconds) / 1_000_000
        return seconds > 0 ? "in " + age(seconds) : age(-seconds) + " ago"
    }

    /// A duration in the largest unit that keeps it a whole number above 1: 45s, 12m, 3h, 5d.
    static func age(_ seconds: Int64) -> String {
        switch seconds {
        case ..<120: "\(max(seconds, 0))s"
        case ..<7_200: "\(seconds / 60)m"
        case ..<172_800: "\(seconds / 3_600)h"
        default: "\(seconds / 86_400)d"
        }
    }

    /// A rendered table with each line cut to `width` columns ("…" marks the cut), unless `wide`.
    static func fit(_ table: String, wide: Bool) -> String {
        guard !wide else { return table }
        return table.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.count <= width ? String(line) : String(line.prefix(width - 1)) + "…"
        }.joined(separator: "\n")
    }
}
