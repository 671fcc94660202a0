/// Writing JSON text for the tools' `--json` output.
///
/// Output is built by hand: the tools link no Foundation, and values that are already JSON
/// (event data, payloads) are embedded as they are.
public enum JSONText {
    /// `text` as a JSON string literal, quotes included.
    public static func string(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            // C1 controls, separators and bidirectional controls too: the same JSON value, and
            // nothing that can steer a terminal showing it.
            case "\u{00}"..."\u{1F}", "\u{7F}"..."\u{9F}", "\u{2028}", "\u{2029}", "\u{200E}", "\u{200F}",
                "\u{202A}"..."\u{202E}", "\u{2066}"..."\u{2069}", "\u{061C}":
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// A JSON string, or `null` for `nil`.
    public static func string(_ text: String?) -> String { text.map { string($0) } ?? "null" }

    /// A number, or `null` for `nil`.
    public static func number(_ value: Int?) -> String { value.map(String.init) ?? "null" }

    /// An object from already-encoded member values, in the given order.
    public static func object(_ members: [(String, String)]) -> String {
        "{" + members.map { string($0.0) + ":" + $0.1 }.joined(separator: ",") + "}"
    }

    /// An array from already-encoded elements.
    public static func array(_ elements: [String]) -> String {
        "[" + elements.joined(separator: ",") + "]"
    }

    /// Valid JSON with DEL, the C1 controls, the line and paragraph separators and the
    /// bidirectional controls written as `\u` escapes: the same JSON value, safe on a terminal.
    /// (In valid JSON these can only stand inside strings, and C0 controls not at all.)
    public static func escapingControls(_ json: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(json.count)
        var index = 0
        func escape(_ value: UInt32) {
            let hex = Array(String(value, radix: 16).utf8)
            out += Array("\\u".utf8) + [UInt8](repeating: UInt8(ascii: "0"), count: 4 - hex.count) + hex
        }
        while index < json.count {
            let byte = json[index]
            if byte == 0x7F {
                escape(0x7F)
                index += 1
                continue
            }
            if byte == 0xC2, index + 1 < json.count, (0x80...0x9F).contains(json[index + 1]) {
                escape(UInt32(json[index + 1]))
                index += 2
                continue
            }
            if byte == 0xD8, index + 1 < json.count, json[index + 1] == 0x9C {
                escape(0x061C)
                index += 2
                continue
            }
            if byte == 0xE2, index + 2 < json.count {
                let scalar =
                    (UInt32(byte & 0x0F) << 12) | (UInt32(json[index + 1] & 0x3F) << 6)
                    | UInt32(json[index + 2] & 0x3F)
                if let value = Unicode.Scalar(scalar), TerminalText.needsEscape(value, keepLayout: true) {
                    escape(scalar)
                    index += 3
                    continue
                }
            }
            out.append(byte)
            index += 1
        }
        return out
    }
}
