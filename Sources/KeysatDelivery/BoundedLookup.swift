import KeysatCore

#if canImport(Glibc)
    import Glibc
#endif

/// A name lookup that gives up after a time limit: getaddrinfo(3) itself has none (the C library
/// retries for `timeout × attempts` of resolv.conf, 10 s by default, and more for a resolver that
/// never answers), so it runs on a thread of its own that the caller stops waiting for. A
/// thread given up on ends by itself when the C library does; its result is dropped.
final class BoundedLookup: @unchecked Sendable {
    // `@unchecked Sendable`: `answer` and `done` are read and written only under `mutex`.
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var answer: [[UInt8]] = []
    private var done = false
    private let host: String

    private init(host: String) {
        self.host = host
        pthread_mutex_init(&mutex, nil)
        // Its timed wait measured on the monotonic clock: on CLOCK_REALTIME (the default), a
        // wall clock stepped back would stretch the lookup's time limit by the step.
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(&condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    /// The addresses `host` resolves to, or `[]` when the lookup fails or takes longer than
    /// `timeoutSeconds`.
    static func resolve(_ host: String, timeoutSeconds: Double) -> [[UInt8]] {
        let lookup = BoundedLookup(host: host)
        // The thread owns one reference until it is done.
        let context = Unmanaged.passRetained(lookup).toOpaque()
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        defer { pthread_attr_destroy(&attributes) }
        let started = pthread_create(
            &thread, &attributes,
            { raw in
                let lookup = Unmanaged<BoundedLookup>.fromOpaque(raw!).takeRetainedValue()
                let addresses = NetworkPolicy.resolveNow(host: lookup.host)
                pthread_mutex_lock(&lookup.mutex)
                lookup.answer = addresses
                lookup.done = true
                pthread_cond_signal(&lookup.condition)
                pthread_mutex_unlock(&lookup.mutex)
                return nil
            }, context)
        guard started == 0 else {
            Unmanaged<BoundedLookup>.fromOpaque(context).release()
            return NetworkPolicy.resolveNow(host: host)
        }
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let whole = Int(timeoutSeconds)
        deadline.tv_sec += whole
        deadline.tv_nsec += Int((timeoutSeconds - Double(whole)) * 1e9)
        if deadline.tv_nsec >= 1_000_000_000 {
            deadline.tv_sec += 1
            deadline.tv_nsec -= 1_000_000_000
        }
        pthread_mutex_lock(&lookup.mutex)
        defer { pthread_mutex_unlock(&lookup.mutex) }
        while !lookup.done {
            if pthread_cond_timedwait(&lookup.condition, &lookup.mutex, &deadline) == ETIMEDOUT { break }
        }
        return lookup.done ? lookup.answer : []
    }
}
