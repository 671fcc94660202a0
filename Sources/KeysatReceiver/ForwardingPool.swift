import KeysatCore
import KeysatDelivery

#if canImport(Glibc)
    import Glibc
#endif

/// Passes requests on to the application on several threads, each with its own `Forwarder`, so
/// that one slow answer does not hold the others back (issue 20: forwarding was serial, and
/// with a 3 s application 4 of 7 deliveries timed out at the sender after the application had
/// processed them). Finished forwards are collected by the listener's thread, woken through a
/// pipe it polls.
final class ForwardingPool: @unchecked Sendable {
    // Unchecked: `jobs`, `results` and `closing` are used only under `mutex`; each forwarder
    // only by its own thread.
    struct Job {
        var id: Int
        var headers: [(String, String)]
        var body: [UInt8]
    }

    private let forwarders: [Forwarder]
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let queued = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var jobs: [Job] = []
    private var results: [(Int, Forwarder.Result)] = []
    private var busy = 0
    private let wakeWrite: Int32
    /// Readable when results are waiting: the listener polls it.
    let wakeFD: Int32

    /// - Parameter forwarders: one per thread, made on the calling thread (curl's global
    ///   initialisation is not safe to run on several threads at once).
    init(forwarders: [Forwarder]) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            throw KeysatError.system(.unavailable, "cannot create a pipe", errno: errno)
        }
        for end in fds {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, O_NONBLOCK)
        }
        wakeFD = fds[0]
        wakeWrite = fds[1]
        self.forwarders = forwarders
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(queued, nil)
        for index in forwarders.indices { try start(index) }
    }

    /// Threads and descriptors live as long as the process (`listen` returns only to exit):
    /// a thread may be inside a forward that its timeout will end.
    private func start(_ index: Int) throws {
        final class Context {
            let pool: ForwardingPool
            let index: Int
            init(_ pool: ForwardingPool, _ index: Int) {
                self.pool = pool
                self.index = index
            }
        }
        var thread = pthread_t()
        let context = Unmanaged.passRetained(Context(self, index)).toOpaque()
        let rc = pthread_create(
            &thread, nil,
            { raw in
                let context = Unmanaged<Context>.fromOpaque(raw!).takeRetainedValue()
                context.pool.work(context.pool.forwarders[context.index])
                return nil
            }, context)
        guard rc == 0 else {
            Unmanaged<Context>.fromOpaque(context).release()
            throw KeysatError.system(.unavailable, "cannot start a forwarding thread", errno: rc)
        }
        pthread_detach(thread)
    }

    func submit(_ job: Job) {
        pthread_mutex_lock(mutex)
        jobs.append(job)
        pthread_cond_signal(queued)
        pthread_mutex_unlock(mutex)
    }

    /// The forwards finished since the last call (the wake pipe emptied first).
    func finished() -> [(Int, Forwarder.Result)] {
        var drain = [UInt8](repeating: 0, count: 256)
        while drain.withUnsafeMutableBytes({ read(wakeFD, $0.baseAddress, $0.count) }) > 0 {}
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let done = results
        results = []
        return done
    }

    private func work(_ forwarder: Forwarder) {
        while true {
            pthread_mutex_lock(mutex)
            while jobs.isEmpty { pthread_cond_wait(queued, mutex) }
            let job = jobs.removeFirst()
            busy += 1
            pthread_mutex_unlock(mutex)
            let result = forwarder.forward(headers: job.headers, body: job.body)
            pthread_mutex_lock(mutex)
            busy -= 1
            results.append((job.id, result))
            pthread_mutex_unlock(mutex)
            var byte: UInt8 = 1
            _ = write(wakeWrite, &byte, 1)
        }
    }
}
