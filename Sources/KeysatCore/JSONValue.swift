/// A JSON document as values: what a filter (`EventFilter`) is written in and matched against.
///
/// Event data is otherwise never parsed (`JSONValidator` checks it and its bytes are sent as
/// they are); this is built only where a value must be looked at. Object members keep their
/// order and duplicates; `member(_:)` takes the first, as SQLite's `json_extract` and
/// `JSONStrings.field` do.
///
/// An object is its keys and its values in two arrays, not an array of (key, value) pairs:
/// the first use of an array of a new element type costs keysat-enqueue's start the runtime's
/// instantiation of its metadata, and a tuple's more (callgrind: 25,000 instructions for the
/// pairs, of 147,000 that three filters cost), where arrays of strings are in use already.
/// Not `indirect`: arrays hold the nesting, and boxing each value was an allocation per value.
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    /// Keys and values, as many of each, in the order written.
    case object(keys: [String], values: [JSONValue])

    /// Parses one JSON value, strictly (RFC 8259, `JSONValidator`: no trailing commas, no
    /// comments, valid UTF-8, at most `JSONValidator.maximumDepth` levels).
    /// - Throws: `JSONValidator.Failure` saying what is wrong and at which byte.
    public init(parsing bytes: [UInt8]) throws(JSONValidator.Failure) {
        try JSONValidator.validate(bytes)
        var reader = JSONStrings.Reader(bytes: bytes)
        reader.skipWhitespace()
        self = Self.value(&reader)
    }

    /// The value at the reader, which stands on valid JSON; moves past it.
    private static func value(_ reader: inout JSONStrings.Reader) -> JSONValue {
        switch reader.peek {
        case UInt8(ascii: "\""): return .string(reader.string())
        case UInt8(ascii: "{"):
            var keys: [String] = []
            var values: [JSONValue] = []
            reader.index += 1
            while let key = nextKey(&reader) {
                keys.append(key)
                values.append(value(&reader))
            }
            return .object(keys: keys, values: values)
        case UInt8(ascii: "["):
            var elements: [JSONValue] = []
            reader.index += 1
            while nextElement(&reader) { elements.append(value(&reader)) }
            return .array(elements)
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            let first = reader.peek
            reader.skipValue()
            return first == UInt8(ascii: "n") ? .null : .bool(first == UInt8(ascii: "t"))
        default:
            let start = reader.index
            reader.skipValue()
            return .number(JSONNumber(String(decoding: reader.bytes[start..<reader.index], as: UTF8.self)))
        }
    }

    /// Inside an object: the next member's key, the reader then on its value; `nil` at the end
    /// (the reader past the `}`).
    private static func nextKey(_ reader: inout JSONStrings.Reader) -> String? {
        reader.skipWhitespace()
        if reader.peek == UInt8(ascii: ",") {
            reader.index += 1
            reader.skipWhitespace()
        }
        if reader.peek == UInt8(ascii: "}") {
            reader.index += 1
            return nil
        }
        let key = reader.string()
        reader.skipWhitespace()
        reader.index += 1  // ':'
        reader.skipWhitespace()
        return key
    }

    /// Inside an array: whether another element follows (the reader then on it); at the end
    /// the reader moves past the `]`.
    private static func nextElement(_ reader: inout JSONStrings.Reader) -> Bool {
        reader.skipWhitespace()
        if reader.peek == UInt8(ascii: ",") {
            reader.index += 1
            reader.skipWhitespace()
        }
        if reader.peek == UInt8(ascii: "]") {
            reader.index += 1
            return false
        }
        return true
    }

    /// The value of the object's first member named `key` (compared as Unicode scalars, not
    /// by Swift's canonical equivalence); `nil` when there is none or this is not an object.
    public func member(_ key: String) -> JSONValue? {
        guard case .object(let keys, let values) = self,
            let index = keys.firstIndex(where: { $0.unicodeScalars.elementsEqual(key.unicodeScalars) })
        else { return nil }
        return values[index]
    }

    /// Whether two values are the same JSON value: same type (no coercion: `1` is not `"1"`),
    /// numbers by value (`1` and `1.0` are equal), strings scalar by scalar, arrays element by
    /// element in order, objects with the same members in any order (first of duplicates).
    public func isSame(as other: JSONValue) -> Bool {
        switch (self, other) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b
        case (.string(let a), .string(let b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case (.array(let a), .array(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.isSame(as: $1) }
        case (.object(let a, _), .object(let b, _)):
            // Pairwise rather than with sets of keys (see `FilterCompiler.checkDuplicates`).
            guard b.allSatisfy({ member($0) != nil }) else { return false }
            return a.allSatisfy { key in
                guard let theirs = other.member(key), let ours = member(key) else { return false }
                return ours.isSame(as: theirs)
            }
        default: return false
        }
    }

    /// Compact JSON text: numbers as written, strings as `JSONText.string` writes them.
    public var text: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .number(let number): return number.text
        case .string(let string): return JSONText.string(string)
        case .array(let elements): return "[" + elements.map(\.text).joined(separator: ",") + "]"
        case .object(let keys, let values):
            return JSONText.object(keys.indices.map { (keys[$0], values[$0].text) })
        }
    }
}
