import KeysatCommandLine
import KeysatCore

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
        var declaration = Declaration(kind: .option, option: option, repeating: repeating)
        if case .none = box.value { declaration.required = true }
        return [declaration]
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
