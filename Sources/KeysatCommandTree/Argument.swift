import KeysatCommandLine
import KeysatCore

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
