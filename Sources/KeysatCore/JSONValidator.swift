/// Checks that bytes are one JSON value as RFC 8259 defines it, without building it.
///
/// The tools never re-encode event data: it is validated here and then embedded byte for
/// byte, so big numbers, `1.10` and key order reach the receiver unchanged.
/// See <https://www.rfc-editor.org/rfc/rfc8259>.
public struct JSONValidator {
    /// Why the bytes are not JSON, and where (a 0-based byte offset).
    public struct Failure: Error, Equatable, Sendable, CustomStringConvertible {
        public var offset: Int
        public var reason: String
        public var description: String { "\(reason) at byte \(offset)" }
    }

    /// Nesting deeper than this is refused, so that hostile input cannot exhaust the stack.
    public static let maximumDepth = 512

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0

    private init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// Validates `bytes` as exactly one JSON value, with optional surrounding white space.
    /// - Throws: `Failure` with the offset of the first offending byte.
    public static func validate(_ bytes: [UInt8]) throws(Failure) {
        let result: Failure? = bytes.withUnsafeBufferPointer { buffer -> Failure? in
            var validator = JSONValidator(buffer)
            do throws(Failure) {
                validator.skipWhitespace()
                try validator.value(depth: 0)
                validator.skipWhitespace()
                if validator.index < buffer.count {
                    throw validator.failure("unexpected data after the JSON value")
                }
                return nil
            } catch {
                return error
            }
        }
        if let result { throw result }
    }

    // MARK: - Grammar

    private mutating func value(depth: Int) throws(Failure) {
        guard index < bytes.count else {
            throw failure(index == 0 ? "empty input, expected a JSON value" : "unexpected end of input")
        }
        switch bytes[index] {
        case UInt8(ascii: "{"): try object(depth: depth + 1)
        case UInt8(ascii: "["): try array(depth: depth + 1)
        case UInt8(ascii: "\""): try string()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
        default: throw failure("unexpected character, expected a JSON value")
        }
    }

    private mutating func object(depth: Int) throws(Failure) {
        guard depth <= JSONValidator.maximumDepth else { throw failure("nesting too deep") }
        index += 1
        skipWhitespace()
        if peek == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            guard peek == UInt8(ascii: "\"") else { throw failure("expected a string key") }
            try string()
            skipWhitespace()
            guard peek == UInt8(ascii: ":") else { throw failure("expected ':' after a key") }
            index += 1
            skipWhitespace()
            try value(depth: depth)
            skipWhitespace()
            switch peek {
            case UInt8(ascii: ","):
                index += 1
                skipWhitespace()
            case UInt8(ascii: "}"):
                index += 1
                return
            default: throw failure("expected ',' or '}' in an object")
            }
        }
    }

    private mutating func array(depth: Int) throws(Failure) {
        guard depth <= JSONValidator.maximumDepth else { throw failure("nesting too deep") }
        index += 1
        skipWhitespace()
        if peek == UInt8(ascii: "]") {
            index += 1
            return
        }
        while true {
            try value(depth: depth)
            skipWhitespace()
            switch peek {
            case UInt8(ascii: ","):
                index += 1
                skipWhitespace()
            case UInt8(ascii: "]"):
                index += 1
                return
            default: throw failure("expected ',' or ']' in an array")
            }
        }
    }

    private mutating func string() throws(Failure) {
        index += 1  // the opening quote
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { break }
                switch bytes[index] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                    UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 1
                case UInt8(ascii: "u"):
                    index += 1
                    for _ in 0..<4 {
                        guard index < bytes.count, bytes[index].isHexDigit else {
                            throw failure("invalid \\u escape in a string")
                        }
                        index += 1
                    }
                default: throw failure("invalid escape in a string")
                }
            case 0..<0x20:
                throw failure("unescaped control character in a string")
            case 0x20..<0x80:
                index += 1
            default:
                try utf8Sequence()
            }
        }
        throw failure("unterminated string")
    }

    /// One multi-byte UTF-8 sequence, well-formed as Unicode defines it (no overlongs,
    /// no surrogates, nothing above U+10FFFF).
    private mutating func utf8Sequence() throws(Failure) {
        let lead = bytes[index]
        let count: Int
        var lower: UInt8 = 0x80
        var upper: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: count = 1
        case 0xE0:
            count = 2
            lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: count = 2
        case 0xED:
            count = 2
            upper = 0x9F
        case 0xF0:
            count = 3
            lower = 0x90
        case 0xF1...0xF3: count = 3
        case 0xF4:
            count = 3
            upper = 0x8F
        default: throw failure("invalid UTF-8")
        }
        for position in 1...count {
            guard index + position < bytes.count else { throw failure("invalid UTF-8") }
            let byte = bytes[index + position]
            let (low, high) = position == 1 ? (lower, upper) : (UInt8(0x80), UInt8(0xBF))
            guard byte >= low, byte <= high else { throw failure("invalid UTF-8") }
        }
        index += count + 1
    }

    private mutating func number() throws(Failure) {
        if peek == UInt8(ascii: "-") { index += 1 }
        guard let first = peek, first.isDigit else { throw failure("invalid number") }
        index += 1
        if first != UInt8(ascii: "0") {
            while let byte = peek, byte.isDigit { index += 1 }
        }
        if peek == UInt8(ascii: ".") {
            index += 1
            guard let byte = peek, byte.isDigit else {
                throw failure("invalid number: digit expected after '.'")
            }
            while let byte = peek, byte.isDigit { index += 1 }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            index += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
            guard let byte = peek, byte.isDigit else {
                throw failure("invalid number: digit expected in exponent")
            }
            while let byte = peek, byte.isDigit { index += 1 }
        }
    }

    private mutating func literal(_ word: String) throws(Failure) {
        for byte in word.utf8 {
            guard index < bytes.count, bytes[index] == byte else {
                throw failure("invalid literal, expected \(word)")
            }
            index += 1
        }
    }

    // MARK: - Helpers

    private var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private func failure(_ reason: String) -> Failure { Failure(offset: index, reason: reason) }
}

extension UInt8 {
    fileprivate var isDigit: Bool { self >= 0x30 && self <= 0x39 }
    fileprivate var isHexDigit: Bool {
        isDigit || (self >= 0x41 && self <= 0x46) || (self >= 0x61 && self <= 0x66)
    }
}
