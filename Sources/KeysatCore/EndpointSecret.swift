/// Endpoint secrets given by an operator.
public enum EndpointSecret {
    /// The secret in `bytes` (a file's content): surrounding white space is dropped; it must be
    /// 16 to 512 printable ASCII characters without spaces.
    /// - Throws: `KeysatError` (data, 65), never quoting the secret.
    public static func parse(_ bytes: [UInt8], source: String) throws -> String {
        let trimmed = Envelope.trimmed(bytes)
        guard trimmed.count >= 16, trimmed.count <= 512,
            trimmed.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else {
            throw KeysatError(
                .data,
                "the secret in \(source) must be 16 to 512 printable ASCII characters without spaces")
        }
        return String(decoding: trimmed, as: UTF8.self)
    }
}
