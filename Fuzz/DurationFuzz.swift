// libFuzzer target for the duration and moment parsers that every option and `--since` go
// through: never a crash, and every accepted duration is at most DurationText.maximumSeconds,
// so that adding it to any time this project handles cannot overflow.
// Built by Fuzz/run.sh, together with the library sources it tests.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDuration(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    let now = Timestamp(microseconds: 1_800_000_000_000_000)
    if let seconds = DurationText.seconds(text) {
        precondition(seconds >= 0 && seconds <= DurationText.maximumSeconds, "accepted \(seconds)")
        _ = now.adding(seconds: -seconds).rfc3339
        _ = now.adding(seconds: seconds).rfc3339
    }
    if let seconds = DurationText.fractionalSeconds(text) {
        precondition(seconds.isFinite && seconds >= 0 && seconds <= Double(DurationText.maximumSeconds))
        _ = Int64(seconds * 1_000_000)
    }
    if let moment = DurationText.moment(text, now: now) { _ = moment.rfc3339 }
    _ = Timestamp(rfc3339: text)?.rfc3339
    return 0
}
