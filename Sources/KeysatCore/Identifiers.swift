/// Random identifiers and secrets, from a generator the caller passes in.
public enum Identifiers {
    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// A UUID version 4 in its canonical lowercase form.
    public static func uuid4(using generator: inout some RandomNumberGenerator) -> String {
        // Two 64-bit draws, not sixteen: each draw of the system generator is a system call.
        var bytes = [UInt8](repeating: 0, count: 16)
        for half in 0..<2 {
            let word = generator.next()
            for index in 0..<8 { bytes[half * 8 + index] = UInt8(truncatingIfNeeded: word >> (8 * index)) }
        }
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
        var bytes = [UInt8](repeating: 0, count: 32)
        for quarter in 0..<4 {
            let word = generator.next()
            for index in 0..<8 { bytes[quarter * 8 + index] = UInt8(truncatingIfNeeded: word >> (8 * index)) }
        }
        return lowercaseHex(bytes)
    }

    /// Bytes as lowercase hexadecimal text.
    public static func lowercaseHex(_ bytes: [UInt8]) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
            for (index, byte) in bytes.enumerated() {
                buffer[2 * index] = hexDigits[Int(byte >> 4)]
                buffer[2 * index + 1] = hexDigits[Int(byte & 0x0F)]
            }
            return bytes.count * 2
        }
    }
}
