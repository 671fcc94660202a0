/// A small command-line parser for the two programs whose start-up time is budgeted
/// (keysat-enqueue, keysat-deliver): swift-argument-parser and the Foundation it brings cost
/// them several milliseconds per start. `--name value`, `--name=value`, `-x`, and `--` are
/// understood; a word starting with `-` and a digit is a value (a negative JSON number).
public struct OptionParser: Sendable {
    /// One option: its names (`-v`, `--verbose`), and whether it takes a value.
    public struct Option: Sendable {
        public var names: [String]
        public var takesValue: Bool
        /// A flag that may also be given a value as `--name=value` (its value is "" otherwise).
        public var optionalValue = false

        public init(_ names: String..., value: Bool = false, optionalValue: Bool = false) {
            self.names = names
            self.takesValue = value
            self.optionalValue = optionalValue
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

        /// The value of `option` as a duration in seconds (`30`, `0.5`, `30s`, `5m`), if given.
        public func seconds(_ option: String, positive: Bool = true) throws -> Double? {
            guard let text = value(option) else { return nil }
            guard let seconds = DurationText.fractionalSeconds(text), !positive || seconds > 0 else {
                throw KeysatError(
                    .usage,
                    "'\(option)' must be a\(positive ? " positive" : "") duration such as 10, 0.5, 30s or 2m")
            }
            return seconds
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
                throw KeysatError(.usage, "unknown option '\(name)'")
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
}
