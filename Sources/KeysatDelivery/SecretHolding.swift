internal import CSystemShim
import KeysatCore
import KeysatStore

#if canImport(Glibc)
    import Glibc
#endif

/// What a process that holds endpoint secrets does first: it makes itself non-dumpable, so
/// that no core file (on a crash, or asked for with gcore or a signal) carries the secrets, and
/// another user with the same uid's rights cannot read them from /proc/PID/mem or /environ.
public enum SecretHolding {
    /// - Throws: `KeysatError` (internal) with the errno if the kernel refused.
    public static func begin() throws {
        guard keysat_set_nondumpable() == 0 else {
            let code = errno
            throw KeysatError.system(.internal, "cannot make the process non-dumpable", errno: code)
        }
    }
}
