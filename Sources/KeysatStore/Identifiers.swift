/// Random identifiers and secrets, from a generator the caller passes in.
public enum Identifiers {
    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// A UUID version 4 in its canonical lowercase form.
    public static func uuid4(using generator: inout some RandomNumberGenerator) -> String {
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = lowercaseHex(bytes)
        let u = Array(hex.utf8)
        return String(decoding: u[0..<8], as: UTF8.self) + "-"
            + String(decoding: u[8..<12], as: UTF8.self) + "-"
            + String(decoding: u[12..<16], as: UTF8.self) + "-"
            + String(decoding: u[16..<20], as: UTF8.self) + "-"
            + String(decoding: u[20..<32], as: UTF8.self)
    }

    /// A new endpoint secret: 32 random bytes as 64 lowercase hex digits.
    public static func secret(using generator: inout some RandomNumberGenerator) -> String {
        lowercaseHex((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// Bytes as lowercase hexadecimal text.
    public static func lowercaseHex(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        for byte in bytes {
            out.append(hexDigits[Int(byte >> 4)])
            out.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
