// libFuzzer target for content filters (issue 23): the input is a filter, then a NUL, then
// event data. Compiling must never crash, whatever the filter (hostile text another program
// stored); a filter that compiles must compile again from its stored text to the same text and
// to the same verdict on the data; matching must never crash; and a filter's negation
// (`$not`) must give the opposite verdict.
// Built by Fuzz/run.sh, together with the library sources it tests.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFilter(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    let cut = bytes.firstIndex(of: 0) ?? bytes.count
    let text = String(decoding: bytes[..<cut], as: UTF8.self)
    let data = cut < bytes.count ? Array(bytes[(cut + 1)...]) : Array("{}".utf8)
    guard let filter = try? EventFilter(text) else { return 0 }
    guard let again = try? EventFilter(filter.text) else { preconditionFailure("stored text does not compile") }
    precondition(again.text == filter.text, "stored text is not stable")
    let moment = Timestamp(rfc3339: "2026-12-06T10:00:00.000000+00:00")!
    guard let envelope = EventFilter.envelope(eventType: "license.issued", timestamp: moment, data: data) else {
        return 0
    }
    let verdict = filter.matches(envelope)
    precondition(again.matches(envelope) == verdict, "the stored text judges otherwise")
    if filter.text.utf8.count < EventFilter.maximumBytes - 16,
        let negated = try? EventFilter(#"{"$not":"# + filter.text + "}")
    {
        precondition(negated.matches(envelope) == !verdict, "$not does not negate")
    }
    return 0
}
