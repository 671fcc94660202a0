import KeysatCore

/// Outcomes could not be recorded (a full disk, no descriptor left for the recorder's
/// connection): the run stops starting requests at once and ends with this cause, worded with
/// how many requests went out and were not recorded (the next run sends them again).
struct RecordingFailure: Error {
    var cause: KeysatError

    /// The error the run ends with: the cause's class (74 for I/O and a full disk, 71 for
    /// descriptors or memory), its message, and what became of the requests: those answered and
    /// not recorded (`lost`, sent for sure), and those abandoned in flight (`inFlight`, which may
    /// or may not have reached their receiver).
    func report(sentNotRecorded lost: Int, inFlight: Int, anySent: Bool) -> KeysatError {
        var error = cause
        if !anySent {
            error.message += "; the run sent nothing"
        } else if lost == 0 && inFlight == 0 {
            error.message += "; the run stopped, and every request it sent is recorded"
        } else {
            func requests(_ n: Int) -> String { "\(n) request\(n == 1 ? " was" : "s were")" }
            var what = "\(requests(lost)) sent and not recorded"
            if inFlight > 0 { what += " and \(requests(inFlight)) abandoned in flight" }
            error.message +=
                "; the run stopped: \(what); the next run sends them again (receivers drop duplicates by webhook-id)"
        }
        return error
    }
}
