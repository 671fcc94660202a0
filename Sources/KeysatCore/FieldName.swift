/// A name in a dotted path into an event's `data` (`--order-by license.id`, `deliveries erase
/// --where data.customer_email=…`): one rule for both, so that a path one accepts the other
/// reads the same way. Letters, digits, `_` and `-`: nothing a JSON path or SQL would quote.
public enum FieldName {
    public static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}
