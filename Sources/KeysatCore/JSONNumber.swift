/// A JSON number compared exactly, as a decimal: `1`, `1.0` and `10e-1` are equal, and
/// `9007199254740993` is greater than `9007199254740992` (a `Double` holds neither exactly).
///
/// A filter (`EventFilter`) compares an event's numbers with its own; rounding them to binary
/// floating point would make `$gt` and `$eq` answer for other numbers than the ones written.
public struct JSONNumber: Sendable, Comparable, CustomStringConvertible {
    /// The number as written.
    public let text: String
    private let negative: Bool
    /// Significant digits (0...9), no leading or trailing zero; empty for zero.
    private let digits: [UInt8]
    /// The value is `digits` × 10^`exponent`.
    private let exponent: Int

    /// Exponents beyond this are clamped: numbers that far apart compare the same way, and the
    /// sums below cannot overflow.
    private static let exponentLimit = 1_000_000_000

    /// - Parameter text: a number in JSON's grammar (already validated); anything else reads
    ///   as zero.
    public init(_ text: String) {
        self.text = text
        var bytes = Array(text.utf8)[...]
        negative = bytes.first == UInt8(ascii: "-")
        if negative { bytes = bytes.dropFirst() }
        var mantissa: [UInt8] = []
        var fractionDigits = 0
        var inFraction = false
        var exponent = 0
        while let byte = bytes.first {
            bytes = bytes.dropFirst()
            if byte == UInt8(ascii: ".") {
                inFraction = true
            } else if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                exponent = Self.exponent(bytes)
                break
            } else if (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                if !(mantissa.isEmpty && byte == UInt8(ascii: "0")) { mantissa.append(byte - UInt8(ascii: "0")) }
                if inFraction { fractionDigits += 1 }
            }
        }
        exponent -= fractionDigits
        while mantissa.last == 0 {
            mantissa.removeLast()
            exponent += 1
        }
        digits = mantissa
        self.exponent = exponent
    }

    private static func exponent(_ bytes: ArraySlice<UInt8>) -> Int {
        var rest = bytes
        let negative = rest.first == UInt8(ascii: "-")
        if rest.first == UInt8(ascii: "-") || rest.first == UInt8(ascii: "+") { rest = rest.dropFirst() }
        var value = 0
        for byte in rest where value < exponentLimit {
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return negative ? -min(value, exponentLimit) : min(value, exponentLimit)
    }

    public var description: String { text }

    private var isZero: Bool { digits.isEmpty }

    public static func == (left: JSONNumber, right: JSONNumber) -> Bool {
        if left.isZero || right.isZero { return left.isZero && right.isZero }
        return left.negative == right.negative && left.exponent == right.exponent && left.digits == right.digits
    }

    public static func < (left: JSONNumber, right: JSONNumber) -> Bool {
        let leftSign = left.isZero ? 0 : (left.negative ? -1 : 1)
        let rightSign = right.isZero ? 0 : (right.negative ? -1 : 1)
        if leftSign != rightSign { return leftSign < rightSign }
        if leftSign == 0 { return false }
        let smallerMagnitude = magnitudeIsSmaller(left, right)
        let largerMagnitude = magnitudeIsSmaller(right, left)
        return leftSign > 0 ? smallerMagnitude : largerMagnitude
    }

    /// Whether |left| < |right|, both non-zero: first by the place of the leading digit, then
    /// digit by digit (no trailing zeros, so a prefix is the smaller).
    private static func magnitudeIsSmaller(_ left: JSONNumber, _ right: JSONNumber) -> Bool {
        let leftLead = left.digits.count + left.exponent
        let rightLead = right.digits.count + right.exponent
        if leftLead != rightLead { return leftLead < rightLead }
        return left.digits.lexicographicallyPrecedes(right.digits)
    }
}
