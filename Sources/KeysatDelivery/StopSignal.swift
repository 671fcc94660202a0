import KeysatCore

#if canImport(Glibc)
    import Glibc
#endif

/// SIGTERM and SIGINT as a request to stop starting attempts.
///
/// The signals are blocked and polled with `sigpending(2)`, so no handler runs in signal
/// context. Once one is seen, their default action is restored and they are unblocked: a
/// second signal ends the process at once.
public final class StopSignal {
    private var stopping = false
    private var set = sigset_t()

    public init() {
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Whether a stop was asked for; the first time it is seen, the signal is consumed.
    public var requested: Bool {
        if stopping { return true }
        var pending = sigset_t()
        sigpending(&pending)
        guard sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1 else { return false }
        var timeout = timespec()
        _ = sigtimedwait(&set, nil, &timeout)
        signal(SIGTERM, SIG_DFL)
        signal(SIGINT, SIG_DFL)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        stopping = true
        return true
    }

    deinit {
        if !stopping { pthread_sigmask(SIG_UNBLOCK, &set, nil) }
    }
}
