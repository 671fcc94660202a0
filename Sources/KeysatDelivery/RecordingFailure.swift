import KeysatCore

/// Outcomes could not be recorded (a full disk, no descriptor left for the recorder's
/// connection): the run stops starting requests at once and ends with this cause, worded with
/// how many requests went out and were not recorded (the next run sends them again).
struct RecordingFailure: Error {
    var cause: KeysatError

    /// The error the run ends with: the cause's class (74 for I/O and a full disk, 71 for
    /// descriptors or memory), its message, and what became of the requests.
    func report(sentNotRecorded lost: Int, anySent: Bool) -> KeysatError {
        var error = cause
        if !anySent {
            error.message += "; the run sent nothing"
        } else if lost == 0 {
            error.message += "; the run stopped, and every request it sent is recorded"
        } else {
            error.message +=
                "; the run stopped: \(lost) request\(lost == 1 ? " was" : "s were") sent and not recorded, and the next run sends \(lost == 1 ? "it" : "them") again (receivers drop duplicates by webhook-id)"
        }
        return error
    }
}
