// libFuzzer target for the endpoint URL validator: it must never crash, and a URL it accepts
// starts with http:// or https://, has no spaces or controls, and yields a non-empty host.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzURL(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    guard let host = try? EndpointURL.validate(text) else { return 0 }
    let lower = text.lowercased()
    precondition(lower.hasPrefix("http://") || lower.hasPrefix("https://"), "accepted a non-http URL")
    precondition(!host.isEmpty, "accepted a URL without a host")
    precondition(!text.unicodeScalars.contains { $0.value <= 0x20 }, "accepted spaces or controls")
    return 0
}
