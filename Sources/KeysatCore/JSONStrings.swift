/// Reading the strings of a stored JSON document without building the document: the event
/// types an endpoint subscribes to (`webhook_endpoints.event_types`) where no SQL function
/// reads JSON for us (PostgreSQL 15 has no `IS JSON` test, and a cast of text that another
/// program wrote wrong would fail the whole statement, where SQLite's `json_valid` skips it).
public enum JSONStrings {
    /// The strings at the top level of `text`, decoded, in order: an array's string elements,
    /// an object's string member values, or the document itself when it is a string. This is
    /// what SQLite's `json_each(text)` gives with `type = 'text'`, which SQLite's store reads,
    /// so that an endpoint subscribes to the same event types on either backend.
    ///
    /// - Returns: `nil` when `text` is not valid JSON (`JSONValidator`): such an endpoint
    ///   subscribes to nothing.
    public static func topLevel(_ text: String) -> [String]? {
        let bytes = Array(text.utf8)
        guard (try? JSONValidator.validate(bytes)) != nil else { return nil }
        var reader = Reader(bytes: bytes)
        reader.skipWhitespace()
        switch reader.peek {
        case UInt8(ascii: "\""): return [reader.string()]
        case UInt8(ascii: "["), UInt8(ascii: "{"): return reader.members()
        default: return []
        }
    }

    /// The value at `path` (object keys from the top) of the JSON document `bytes`, as text:
    /// a string decoded, a number, `true` or `false` as written; `nil` when the document is not
    /// valid JSON, the path leads nowhere, or to `null`, an array or an object. What
    /// `deliveries erase --where` compares, as SQLite's `json_extract` reads it (the first of
    /// duplicate keys).
    /// With `booleans` false, `true` and `false` are `nil` too (an ordering key is a string
    /// or a number: `OrderingKey.derive`).
    public static func field(_ bytes: [UInt8], path: [String], booleans: Bool = true) -> String? {
        guard !path.isEmpty, (try? JSONValidator.validate(bytes)) != nil else { return nil }
        var reader = Reader(bytes: bytes)
        reader.skipWhitespace()
        for (depth, key) in path.enumerated() {
            guard reader.peek == UInt8(ascii: "{"), reader.member(key) else { return nil }
            if depth == path.count - 1 {
                if !booleans && (reader.peek == UInt8(ascii: "t") || reader.peek == UInt8(ascii: "f")) { return nil }
                return reader.scalar()
            }
        }
        return nil
    }

    /// A cursor over bytes already validated as JSON: it never meets what the grammar forbids.
    /// Internal, not private: `JSONValue` reads with it too.
    struct Reader {
        let bytes: [UInt8]
        var index = 0

        var peek: UInt8 { bytes[index] }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        /// The string values among the elements or member values of the array or object here.
        mutating func members() -> [String] {
            let isObject = peek == UInt8(ascii: "{")
            var found: [String] = []
            index += 1
            while true {
                skipWhitespace()
                if peek == UInt8(ascii: "]") || peek == UInt8(ascii: "}") { return found }
                if peek == UInt8(ascii: ",") {
                    index += 1
                    skipWhitespace()
                }
                if isObject {
                    skipValue()  // the key
                    skipWhitespace()
                    index += 1  // ':'
                    skipWhitespace()
                }
                if peek == UInt8(ascii: "\"") { found.append(string()) } else { skipValue() }
            }
        }

        /// In the object here, moves to the value of its first member named `key`; `false`
        /// when it has none.
        mutating func member(_ key: String) -> Bool {
            index += 1
            while true {
                skipWhitespace()
                if peek == UInt8(ascii: "}") { return false }
                if peek == UInt8(ascii: ",") {
                    index += 1
                    skipWhitespace()
                }
                let name = string()
                skipWhitespace()
                index += 1  // ':'
                skipWhitespace()
                // By bytes: Swift's == finds canonically equivalent names equal (K and the
                // Kelvin sign), which a receiver's JSON parser does not.
                if name.utf8.elementsEqual(key.utf8) { return true }
                skipValue()
            }
        }

        /// The string, number or boolean here as text; `nil` for anything else.
        mutating func scalar() -> String? {
            switch peek {
            case UInt8(ascii: "\""): return string()
            case UInt8(ascii: "{"), UInt8(ascii: "["), UInt8(ascii: "n"): return nil
            default:
                let start = index
                skipValue()
                return String(decoding: bytes[start..<index], as: UTF8.self)
            }
        }

        /// Moves past one value: a string, or a number or literal, or a nested array or
        /// object, counting brackets outside strings.
        mutating func skipValue() {
            var depth = 0
            repeat {
                switch peek {
                case UInt8(ascii: "\""): _ = string()
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    depth += 1
                    index += 1
                case UInt8(ascii: "]"), UInt8(ascii: "}"):
                    depth -= 1
                    index += 1
                default:
                    if depth == 0 {
                        while index < bytes.count, !",]} \t\r\n".utf8.contains(bytes[index]) { index += 1 }
                    } else {
                        index += 1
                    }
                }
            } while depth > 0
        }

        /// The string here, its escapes decoded. A `\u` escape of a lone surrogate, which no
        /// Swift string can hold, becomes U+FFFD.
        mutating func string() -> String {
            // Most strings have no escape: their bytes, already valid UTF-8, are the string.
            var end = index + 1
            while bytes[end] != UInt8(ascii: "\"") && bytes[end] != UInt8(ascii: "\\") { end += 1 }
            if bytes[end] == UInt8(ascii: "\"") {
                defer { index = end + 1 }
                return String(decoding: bytes[(index + 1)..<end], as: UTF8.self)
            }
            var scalars = String.UnicodeScalarView()
            var raw: [UInt8] = []
            func flush() {
                scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
                raw.removeAll(keepingCapacity: true)
            }
            index += 1
            while peek != UInt8(ascii: "\"") {
                guard peek == UInt8(ascii: "\\") else {
                    raw.append(peek)
                    index += 1
                    continue
                }
                flush()
                scalars.append(escape())
            }
            index += 1
            flush()
            return String(scalars)
        }

        /// The escape at `index` (its backslash), which it moves past.
        private mutating func escape() -> Unicode.Scalar {
            let letter = bytes[index + 1]
            index += 2
            switch letter {
            case UInt8(ascii: "b"): return "\u{08}"
            case UInt8(ascii: "f"): return "\u{0C}"
            case UInt8(ascii: "n"): return "\n"
            case UInt8(ascii: "r"): return "\r"
            case UInt8(ascii: "t"): return "\t"
            case UInt8(ascii: "u"): break
            default: return Unicode.Scalar(letter)  // '"', '\\' or '/'
            }
            let unit = hex4()
            if (0xD800..<0xDC00).contains(unit), index + 5 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                bytes[index + 1] == UInt8(ascii: "u")
            {
                let saved = index
                index += 2
                let low = hex4()
                if (0xDC00..<0xE000).contains(low) {
                    return Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)) ?? "\u{FFFD}"
                }
                index = saved
            }
            return Unicode.Scalar(unit) ?? "\u{FFFD}"
        }

        /// Four hexadecimal digits at `index`, which it moves past.
        private mutating func hex4() -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                let digit: UInt8 =
                    switch byte {
                    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
                    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
                    default: byte - UInt8(ascii: "A") + 10
                    }
                value = value << 4 | UInt32(digit)
                index += 1
            }
            return value
        }
    }
}
