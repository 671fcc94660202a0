import KeysatCore

/// The command-line parser of the three programs: swift-argument-parser and the Foundation it
/// brings cost keysat-enqueue and keysat-deliver several milliseconds per start, and
/// keysat-webhooks 8 MB of its 16 (issue 24). `--name value`, `--name=value`, `-x`, and `--` are
/// understood; a word starting with `-` and a digit is a value (a negative JSON number).
/// keysat-webhooks' command tree (`ParsableCommand`) declares its options as properties and
/// parses them with this table.
public struct OptionParser: Sendable {
    /// One option: its names (`-v`, `--verbose`), and whether it takes a value.
    public struct Option: Sendable {
        public var names: [String]
        public var takesValue: Bool
        /// A flag that may also be given a value as `--name=value` (its value is "" otherwise).
        public var optionalValue = false
        /// What the value is, for shell completion.
        public var completion: Completion = .none
        /// Not listed in completions (an option programs pass each other).
        public var hidden = false
        /// What `--help` says of it, the name of its value (`<path>`), its default and its
        /// values, for the command tree's help.
        public var help = ""
        public var valueName = ""
        public var defaultText: String?
        /// More than its help line: a paragraph under it.
        public var discussion = ""
        public var values: [String] = []

        /// How a shell completes an option's value.
        public enum Completion: Sendable, Equatable {
            case none
            case file
            case directory
            case words([String])
        }

        public init(
            _ names: String..., value: Bool = false, optionalValue: Bool = false,
            completion: Completion = .none,
            hidden: Bool = false, help: String = ""
        ) {
            self.help = help
            self.names = names
            self.takesValue = value
            self.optionalValue = optionalValue
            self.completion = completion
            self.hidden = hidden
        }

        /// The name results are filed under: the last (long) one.
        var key: String { names.last! }
    }

    /// What the command line said.
    public struct Parsed: Sendable {
        public var values: [String: [String]] = [:]
        public var flags: Set<String> = []
        public var positionals: [String] = []

        /// The last value given for `option`.
        public func value(_ option: String) -> String? { values[option]?.last }
        public func all(_ option: String) -> [String] { values[option] ?? [] }
        public func has(_ flag: String) -> Bool { flags.contains(flag) }

        /// The value of `option` as a whole number within `range`, if given.
        /// - Throws: `KeysatError` (usage) naming the option.
        public func integer(_ option: String, in range: ClosedRange<Int>, what: String) throws -> Int? {
            guard let text = value(option) else { return nil }
            guard let number = Int(text), range.contains(number) else {
                throw KeysatError(.usage, "'\(option)' must be \(what)")
            }
            return number
        }

        /// The value of `option` as a duration in seconds (`30`, `0.5`, `30s`, `5m`), if given,
        /// checked by `DurationText.option` (at least `minimum`; zero only where `zero` says
        /// what it means).
        public func seconds(_ option: String, minimum: Double = 0.001, zero: String? = nil) throws -> Double? {
            guard let text = value(option) else { return nil }
            return try DurationText.option(text, named: option, minimum: minimum, zero: zero)
        }
    }

    public var options: [Option]

    public init(_ options: [Option]) { self.options = options }

    /// Parses `arguments` (without the program name).
    /// - Throws: `KeysatError` (usage, 64) for an unknown option or a missing value.
    public func parse(_ arguments: [String]) throws -> Parsed {
        var parsed = Parsed()
        var index = 0
        var onlyPositionals = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if onlyPositionals || !argument.hasPrefix("-") || argument == "-"
                || argument.dropFirst().first.map({ $0.isNumber }) == true
            {
                parsed.positionals.append(argument)
                continue
            }
            if argument == "--" {
                onlyPositionals = true
                continue
            }
            var name = argument
            var value: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                value = String(argument[argument.index(after: equals)...])
            }
            guard let option = options.first(where: { $0.names.contains(name) }) else {
                let hint = suggestion(for: name).map { " (did you mean '\($0)'?)" } ?? ""
                throw KeysatError(.usage, "unknown option '\(name)'\(hint)")
            }
            if option.takesValue {
                if value == nil {
                    guard index < arguments.count else {
                        throw KeysatError(.usage, "option '\(name)' needs a value")
                    }
                    value = arguments[index]
                    index += 1
                }
                parsed.values[option.key, default: []].append(value!)
            } else if option.optionalValue {
                parsed.flags.insert(option.key)
                parsed.values[option.key, default: []].append(value ?? "")
            } else {
                guard value == nil else { throw KeysatError(.usage, "option '\(name)' takes no value") }
                parsed.flags.insert(option.key)
            }
        }
        return parsed
    }

    /// The option name closest to a mistyped one (at most two edits away, or a prefix of one).
    func suggestion(for name: String) -> String? {
        OptionParser.closest(to: name, among: options.filter { !$0.hidden }.flatMap(\.names))
    }

    /// The candidate closest to a mistyped word: one it begins (three characters at least), or
    /// one at most two edits away. For "did you mean", in all three programs.
    public static func closest(to word: String, among candidates: [String]) -> String? {
        if word.count >= 3, let extended = candidates.first(where: { $0.hasPrefix(word) }) { return extended }
        let scored = candidates.map { ($0, editDistance(word, $0)) }.filter { $0.1 <= 2 }
        return scored.min { $0.1 < $1.1 }?.0
    }

    /// Levenshtein distance, for "did you mean".
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8)
        let b = Array(b.utf8)
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1] + [Int](repeating: 0, count: b.count)
            for (j, y) in b.enumerated() {
                current[j + 1] = Swift.min(
                    previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }

    /// A bash completion function for `program`, made from this table, so that the completion
    /// offers exactly the options the parser takes. `positionals` completes the other words.
    public func bashCompletion(program: String, positionals: [String] = []) -> String {
        let function = "_" + String(program.map { $0 == "-" ? "_" : $0 })
        let visible = options.filter { !$0.hidden }
        var cases = ""
        let files = visible.filter { $0.completion == .file }.flatMap(\.names)
        if !files.isEmpty {
            cases +=
                "        \(files.joined(separator: "|"))) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n"
        }
        // `--kick=file` is completed as one word; `--kick file` would make `file` the event type.
        for option in visible where !option.optionalValue {
            if case .words(let words) = option.completion {
                cases +=
                    "        \(option.names.joined(separator: "|"))) COMPREPLY=($(compgen -W \"\(words.joined(separator: " "))\" -- \"$cur\")); return ;;\n"
            }
        }
        let plain = visible.filter { $0.takesValue && $0.completion == .none }.flatMap(\.names)
        if !plain.isEmpty { cases += "        \(plain.joined(separator: "|"))) return ;;\n" }
        var words: [String] = []
        for option in visible {
            words += option.names
            if option.optionalValue, case .words(let values) = option.completion {
                words += values.map { "\(option.names.last!)=\($0)" }
            }
        }
        return """
            # bash completion for \(program), made from the table its options are parsed with
            # (\(program) --generate-completion-script bash): it cannot drift from the program.
            \(function)() {
                local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
                case $prev in
            \(cases)    esac
                if [[ $cur == -* ]]; then
                    COMPREPLY=($(compgen -W "\(words.joined(separator: " "))" -- "$cur"))
                else
                    COMPREPLY=($(compgen -W "\(positionals.joined(separator: " "))" -- "$cur"))
                fi
            }
            complete -F \(function) \(program)

            """
    }
}
