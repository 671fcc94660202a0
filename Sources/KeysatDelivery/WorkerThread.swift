import KeysatCore

#if canImport(Glibc)
    import Glibc
#endif

/// The threads a run starts besides its own (`BackgroundRecorder`'s writer, `BackgroundClaims`'
/// claimer): `body` runs on a new thread, which the caller joins before what `body` uses goes
/// away. A thread that cannot be started is said as the run's failure: `what` names its job.
enum WorkerThread {
    static func start(_ what: String, _ body: @escaping () -> Void) throws -> pthread_t {
        final class Body {
            let run: () -> Void
            init(_ run: @escaping () -> Void) { self.run = run }
        }
        var made = pthread_t()
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        let rc = pthread_create(
            &made, nil,
            { context in
                Unmanaged<Body>.fromOpaque(context!).takeRetainedValue().run()
                return nil
            }, context)
        guard rc == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            throw KeysatError.system(
                rc == EAGAIN ? .system : .internal, "cannot start the thread that \(what)",
                errno: rc, advice: rc == EAGAIN ? KeysatError.exhaustionAdvice(ENOMEM) : nil)
        }
        return made
    }
}
