import KeysatCommandLine
import KeysatCore

/// One option or argument a command declares, as the parser, the help and the completions see it.
struct Declaration {
    enum Kind: Equatable {
        case option, flag
        /// A positional: required, optional (`[<file>]`) or taking the rest (`<ids> ...`).
        case argument(optional: Bool, repeating: Bool)
    }

    var kind: Kind
    /// Names, help, value name, default, values and completion; for an argument, no names.
    var option: OptionParser.Option
    var repeating = false
}

/// A property of a command that the parser fills: `@Option`, `@Flag`, `@Argument`, `@OptionGroup`.
protocol ArgumentSlot {
    func declarations(label: String) -> [Declaration]
    /// Fills the property from the parse; arguments take their words from `positionals` in order.
    func fill(label: String, from parsed: OptionParser.Parsed, positionals: inout [String]) throws
}

/// `word` as the value of `name`, or a usage error that lists the values it can take.
func argumentValue<T: ExpressibleByArgument>(_ word: String, for name: String) throws -> T {
    if let value = T(argument: word) { return value }
    let choices = T.allValueStrings.isEmpty ? "" : " (one of: \(T.allValueStrings.joined(separator: ", ")))"
    throw KeysatError(.usage, "the value '\(word)' is invalid for '\(name)'\(choices)")
}

/// An option that takes a value: `@Option(help: "…") var port = 8088`; optional (`String?`)
/// or repeatable (`[String] = []`).
@propertyWrapper
public struct Option<Value>: ArgumentSlot {
    /// `nil` until parsed for an option that has no default and must be given.
    let box: ArgumentBox<Value?>
    let name: NameSpecification
    let option: OptionParser.Option
    let repeating: Bool
    /// The property's value from every word given for it, or `nil` when none was.
    let convert: ([String], String) throws -> Value?

    public var wrappedValue: Value {
        get { box.value! }
        nonmutating set { box.value = newValue }
    }

    init(
        _ value: Value?, name: NameSpecification, help: ArgumentHelp?, completion: CompletionKind?,
        defaultText: String?, values: [String], repeating: Bool,
        convert: @escaping ([String], String) throws -> Value?
    ) {
        box = ArgumentBox(value)
        self.name = name
        var option = OptionParser.Option("--", value: true, hidden: help?.hidden ?? false)
        option.help = help?.text ?? ""
        option.valueName = help?.valueName ?? ""
        option.discussion = help?.discussion ?? ""
        option.defaultText = defaultText
        option.values = values
        option.completion = completion?.completion ?? (values.isEmpty ? .none : .words(values))
        self.option = option
        self.repeating = repeating
        self.convert = convert
    }

    func declarations(label: String) -> [Declaration] {
        var option = self.option
        option.names = name.names(for: label)
        if option.valueName.isEmpty { option.valueName = kebab(label) }
        return [Declaration(kind: .option, option: option, repeating: repeating)]
    }

    func fill(label: String, from parsed: OptionParser.Parsed, positionals: inout [String]) throws {
        let key = name.names(for: label).last!
        if let value = try convert(parsed.all(key), key) {
            box.value = value
        } else if box.value == nil {
            throw KeysatError(.usage, "missing expected option '\(key) <\(option.valueName.isEmpty ? kebab(label) : option.valueName)>'")
        }
    }
}

extension Option where Value: ExpressibleByArgument {
    public init(
        wrappedValue: Value, name: NameSpecification = .long, parsing: SingleValueParsingStrategy = .next,
        help: ArgumentHelp? = nil, completion: CompletionKind? = nil
    ) {
        self.init(
            wrappedValue, name: name, help: help, completion: completion,
            defaultText: wrappedValue.defaultValueDescription, values: Value.allValueStrings, repeating: false
        ) { words, key in try words.last.map { try argumentValue($0, for: key) } }
    }

    /// An option that must be given.
    public init(
        name: NameSpecification = .long, parsing: SingleValueParsingStrategy = .next, help: ArgumentHelp? = nil,
        completion: CompletionKind? = nil
    ) {
        self.init(
            nil, name: name, help: help, completion: completion, defaultText: nil, values: Value.allValueStrings,
            repeating: false
        ) { words, key in try words.last.map { try argumentValue($0, for: key) } }
    }
}

extension Option {
    public init<T: ExpressibleByArgument>(
        name: NameSpecification = .long, parsing: SingleValueParsingStrategy = .next, help: ArgumentHelp? = nil,
        completion: CompletionKind? = nil
    ) where Value == T? {
        self.init(
            .some(nil), name: name, help: help, completion: completion, defaultText: nil,
            values: T.allValueStrings, repeating: false
        ) { words, key in
            guard let word = words.last else { return nil }
            return .some(try argumentValue(word, for: key) as T)
        }
    }

    public init<T: ExpressibleByArgument>(
        wrappedValue: [T], name: NameSpecification = .long, parsing: SingleValueParsingStrategy = .next,
        help: ArgumentHelp? = nil, completion: CompletionKind? = nil
    ) where Value == [T] {
        self.init(
            wrappedValue, name: name, help: help, completion: completion, defaultText: nil,
            values: T.allValueStrings, repeating: true
        ) { words, key in words.isEmpty ? nil : try words.map { try argumentValue($0, for: key) } }
    }
}

/// An option without a value: `@Flag(help: "…") var json = false`.
@propertyWrapper
public struct Flag: ArgumentSlot {
    let box: ArgumentBox<Bool>
    let name: NameSpecification
    let help: ArgumentHelp?

    public var wrappedValue: Bool {
        get { box.value }
        nonmutating set { box.value = newValue }
    }

    public init(wrappedValue: Bool, name: NameSpecification = .long, help: ArgumentHelp? = nil) {
        box = ArgumentBox(wrappedValue)
        self.name = name
        self.help = help
    }

    func declarations(label: String) -> [Declaration] {
        var option = OptionParser.Option("--", hidden: help?.hidden ?? false)
        option.names = name.names(for: label)
        option.help = help?.text ?? ""
        option.discussion = help?.discussion ?? ""
        return [Declaration(kind: .flag, option: option)]
    }

    func fill(label: String, from parsed: OptionParser.Parsed, positionals: inout [String]) throws {
        if parsed.has(name.names(for: label).last!) { box.value = true }
    }
}

/// A positional argument: required (`var id: String`), optional (`String?`) or the rest
/// (`[String] = []`).
@propertyWrapper
public struct Argument<Value>: ArgumentSlot {
    let box: ArgumentBox<Value?>
    let help: ArgumentHelp?
    let completion: CompletionKind?
    let kind: Declaration.Kind
    /// Takes the words it needs from the front of the positionals.
    let take: (inout [String], String) throws -> Value?

    public var wrappedValue: Value {
        get { box.value! }
        nonmutating set { box.value = newValue }
    }

    public init(help: ArgumentHelp? = nil, completion: CompletionKind? = nil) where Value: ExpressibleByArgument {
        box = ArgumentBox(nil)
        self.help = help
        self.completion = completion
        kind = .argument(optional: false, repeating: false)
        take = { words, name in
            guard !words.isEmpty else { throw KeysatError(.usage, "missing expected argument '\(name)'") }
            return try argumentValue(words.removeFirst(), for: name)
        }
    }

    public init<T: ExpressibleByArgument>(help: ArgumentHelp? = nil, completion: CompletionKind? = nil)
    where Value == T? {
        box = ArgumentBox(.some(nil))
        self.help = help
        self.completion = completion
        kind = .argument(optional: true, repeating: false)
        take = { words, name in words.isEmpty ? nil : .some(try argumentValue(words.removeFirst(), for: name) as T) }
    }

    public init<T: ExpressibleByArgument>(
        wrappedValue: [T], help: ArgumentHelp? = nil, completion: CompletionKind? = nil
    ) where Value == [T] {
        box = ArgumentBox(wrappedValue)
        self.help = help
        self.completion = completion
        kind = .argument(optional: true, repeating: true)
        take = { words, name in
            defer { words.removeAll() }
            return try words.map { try argumentValue($0, for: name) }
        }
    }

    func declarations(label: String) -> [Declaration] {
        var option = OptionParser.Option(completion: completion?.completion ?? .none)
        option.names = []
        option.help = help?.text ?? ""
        option.valueName = help?.valueName ?? kebab(label)
        return [Declaration(kind: kind, option: option)]
    }

    func fill(label: String, from parsed: OptionParser.Parsed, positionals: inout [String]) throws {
        if let value = try take(&positionals, "<\(help?.valueName ?? kebab(label))>") { box.value = value }
    }
}

/// Options several commands share, declared once as a `ParsableArguments` (`--db`,
/// `--busy-timeout`): `@OptionGroup var database: DatabaseOptions`.
@propertyWrapper
public struct OptionGroup<Value: ParsableArguments>: ArgumentSlot {
    let box: ArgumentBox<Value>
    let hidden: Bool

    public var wrappedValue: Value {
        get { box.value }
        nonmutating set { box.value = newValue }
    }

    public init(visibility: ArgumentVisibility = .default) {
        box = ArgumentBox(Value())
        hidden = visibility == .hidden
    }

    func declarations(label: String) -> [Declaration] {
        CommandTree.declarations(of: box.value).map {
            var declaration = $0
            if hidden { declaration.option.hidden = true }
            return declaration
        }
    }

    /// Fills the group's own properties, then checks them as the group's `validate()` says.
    func fill(label: String, from parsed: OptionParser.Parsed, positionals: inout [String]) throws {
        try CommandTree.fill(box.value, from: parsed, positionals: &positionals)
        try box.value.validate()
    }
}
