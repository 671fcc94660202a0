/// The one check of header lines, for what a run writes and what `listen` passes on.
///
/// A value is safe when no byte of it could end the line or be read as one by some parser
/// (CR, LF, NUL and the other C0 controls, DEL); a name is an RFC 9110 token, so that a space
/// before the colon or a folded line cannot make two parsers see two different headers
/// (`Transfer-Encoding : chunked` passed `listen`'s hop-by-hop filter that way, issue 20).
public enum HeaderLine {
    /// Whether `value` holds no control byte.
    public static func isSafeValue<Bytes: Sequence>(_ value: Bytes) -> Bool where Bytes.Element == UInt8 {
        for byte in value where byte < 0x20 || byte == 0x7F { return false }
        return true
    }

    /// Whether `name` is a token: one or more of the characters RFC 9110 §5.6.2 allows.
    public static func isToken<Bytes: Collection>(_ name: Bytes) -> Bool where Bytes.Element == UInt8 {
        !name.isEmpty && name.allSatisfy(isTokenCharacter)
    }

    /// Whether `name: value` is a header line a run could write (a token, a safe value).
    public static func isSafe(name: String, value: String) -> Bool {
        isToken(Array(name.utf8)) && isSafeValue(value.utf8)
    }

    private static let tokenCharacters: [Bool] = (0...255).map { byte in
        let character = Character(Unicode.Scalar(UInt8(byte)))
        return character.isASCII
            && (character.isLetter || character.isNumber || "!#$%&'*+-.^_`|~".contains(character))
    }

    private static func isTokenCharacter(_ byte: UInt8) -> Bool { tokenCharacters[Int(byte)] }
}
