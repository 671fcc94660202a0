/// Re-indenting JSON for people, without parsing values: numbers and strings keep their text.
public enum JSONPretty {
    /// `bytes` (valid JSON) indented by two spaces per level.
    public static func format(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        var depth = 0
        var index = 0
        var inString = false
        // Indentation stops deepening at 32 levels: a payload nested 100,000 deep would otherwise
        // print in quadratic space and time.
        func newline() {
            out.append(UInt8(ascii: "\n"))
            out += repeatElement(UInt8(ascii: " "), count: min(depth, 32) * 2)
        }
        while index < bytes.count {
            let byte = bytes[index]
            if inString {
                out.append(byte)
                if byte == UInt8(ascii: "\\"), index + 1 < bytes.count {
                    index += 1
                    out.append(bytes[index])
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                index += 1
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = true
                out.append(byte)
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                out.append(byte)
                let close = byte == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
                if nextSignificant(in: bytes, after: index) == close {
                    while bytes[index] != close { index += 1 }
                    out.append(close)
                } else {
                    depth += 1
                    newline()
                }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                newline()
                out.append(byte)
            case UInt8(ascii: ","):
                out.append(byte)
                newline()
            case UInt8(ascii: ":"):
                out += [UInt8(ascii: ":"), UInt8(ascii: " ")]
            case _ where isSpace(byte):
                break
            default:
                out.append(byte)
            }
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The first byte after `position` that is not white space.
    private static func nextSignificant(in bytes: [UInt8], after position: Int) -> UInt8? {
        var next = position + 1
        while next < bytes.count, isSpace(bytes[next]) { next += 1 }
        return next < bytes.count ? bytes[next] : nil
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }
}
