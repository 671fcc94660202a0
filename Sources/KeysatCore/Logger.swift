/// One-line log messages on standard error, `key=value` fields, filtered by level.
///
/// When standard error is the systemd journal (`$JOURNAL_STREAM` is set), each line starts
/// with the `<N>` syslog priority that journald reads. Callers never pass secrets.
public struct Logger: Sendable {
    public enum Level: String, Sendable, CaseIterable, Comparable {
        case error, warn, info, debug

        /// The syslog priority.
        var priority: Int {
            switch self {
            case .error: 3
            case .warn: 4
            case .info: 6
            case .debug: 7
            }
        }

        var word: String { self == .warn ? "warning" : rawValue }

        public static func < (a: Level, b: Level) -> Bool { a.priority < b.priority }
    }

    public let program: String
    public let threshold: Level
    public let journal: Bool
    private let write: @Sendable (String) -> Void

    /// - Parameters:
    ///   - threshold: messages less severe than this are dropped.
    ///   - environment: `$JOURNAL_STREAM` there turns on priority prefixes.
    ///   - write: where lines go (standard error by default).
    public init(
        program: String, threshold: Level = .warn, environment: Environment = .process,
        write: @escaping @Sendable (String) -> Void = { Output.error($0) }
    ) {
        self.program = program
        self.threshold = threshold
        self.journal = !(environment["JOURNAL_STREAM"] ?? "").isEmpty
        self.write = write
    }

    public func enabled(_ level: Level) -> Bool { level <= threshold }

    /// Logs `message` with its fields when `level` passes the threshold.
    public func log(_ level: Level, _ message: String, _ fields: KeyValuePairs<String, String> = [:]) {
        guard enabled(level) else { return }
        var line = journal ? "<\(level.priority)>" : ""
        line += "\(program): \(level.word): \(message)"
        for (key, value) in fields { line += " \(key)=\(Logger.quoted(value))" }
        write(line + "\n")
    }

    /// A value as it appears after `key=`: bare when it has no spaces, quotes or controls.
    static func quoted(_ value: String) -> String {
        let plain =
            !value.isEmpty
            && value.unicodeScalars.allSatisfy {
                $0.value > 0x20 && $0 != "\"" && $0 != "=" && !TerminalText.needsEscape($0, keepLayout: false)
            }
        return plain ? value : JSONText.string(value)
    }
}
