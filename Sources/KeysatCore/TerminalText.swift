/// Text from outside (a receiver's answer, a payload, a sender's headers, a row another program
/// wrote) made safe to print for a person: control characters cannot move the cursor, clear the
/// screen, set the title or reorder the line.
///
/// Each C0 control, DEL, C1 control, line or paragraph separator and bidirectional formatting
/// character becomes `\u` and four hex digits (`\u001b` for ESC), as in JSON; a backslash stays
/// itself. JSON output never goes through this: it is exact, and escaped by `JSONText`.
public enum TerminalText {
    /// `text` with its control characters shown as `\uXXXX`; newlines and tabs too unless
    /// `keepLayout` (a multi-line body printed as such).
    public static func escape(_ text: String, keepLayout: Bool = false) -> String {
        if isPrintableASCII(text, keepLayout: keepLayout) { return text }
        guard text.unicodeScalars.contains(where: { needsEscape($0, keepLayout: keepLayout) }) else {
            return text
        }
        var out = ""
        out.unicodeScalars.reserveCapacity(text.unicodeScalars.count + 16)
        for scalar in text.unicodeScalars {
            if needsEscape(scalar, keepLayout: keepLayout) {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Whether `text` is printable ASCII (with newlines and tabs if `keepLayout`), read as
    /// bytes: the common case, and everything a program prints passes here (`Output`), payloads
    /// of megabytes included, so it must not cost a scan by Unicode scalar.
    static func isPrintableASCII(_ text: String, keepLayout: Bool) -> Bool {
        var text = text
        return text.withUTF8 { bytes in
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                if byte < 0x20 || byte >= 0x7F {
                    guard keepLayout && (byte == 0x0A || byte == 0x09) else { return false }
                }
                index += 1
            }
            return true
        }
    }

    public static func needsEscape(_ scalar: Unicode.Scalar, keepLayout: Bool) -> Bool {
        switch scalar.value {
        case 0x0A, 0x09: return !keepLayout
        case 0x00...0x1F, 0x7F...0x9F: return true
        case 0x2028, 0x2029: return true
        case 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069, 0x061C: return true
        default: return false
        }
    }
}
