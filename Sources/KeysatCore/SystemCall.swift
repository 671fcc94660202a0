#if canImport(Glibc)
    import Glibc
#endif

/// The system-call conventions of this project, in one place: retry on `EINTR`, write whole
/// buffers, and say what an `errno` means.
public enum SystemCall {
    /// Calls `body` again while it fails with `EINTR` (a signal arrived during the call).
    public static func retrying<T: BinaryInteger>(_ body: () -> T) -> T {
        while true {
            let result = body()
            if result >= 0 || errno != EINTR { return result }
        }
    }

    /// Writes every byte of `bytes` to `fd`, retrying short writes and `EINTR`.
    /// - Returns: `false` with `errno` set when a write failed.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = retrying { write(fd, buffer.baseAddress! + offset, buffer.count - offset) }
                if written < 0 { return false }
                if written == 0 {
                    errno = EIO
                    return false
                }
                offset += written
            }
            return true
        }
    }

    /// Milliseconds on the monotonic clock, for deadlines of waits (wall time can step).
    public static func monotonicMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// `strerror(code)`, the text of an `errno` value.
    public static func describe(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// Proves that `bytes` more of address space can be had now, with a mapping that takes no
    /// memory (PROT_NONE, MAP_NORESERVE), made and undone at once. Under `ulimit -v` (RLIMIT_AS)
    /// that is what the next allocations meet: a process that runs out of it part way, after
    /// a request went out, dies in the Swift runtime's allocator without a word.
    /// - Throws: `KeysatError` (71, ENOMEM with the advice to raise the limit) naming `what`.
    public static func requireAddressSpace(_ bytes: Int, for what: String) throws {
        let mapped = mmap(nil, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let mapped, mapped != MAP_FAILED else { throw KeysatError.system(.system, what, errno: errno) }
        munmap(mapped, bytes)
    }
}
