import KeysatCommandLine
import KeysatCore

// The declarations of keysat-webhooks' options, as properties of its commands: `@Option`,
// `@Flag`, `@Argument` and `@OptionGroup`, spelled as swift-argument-parser spells them, so that
// an option declared for that library ports by changing the import (issue 24). Each property
// keeps its value in a box; `CommandTree` finds the boxes by reflection (`Mirror`, in the
// standard library), makes the `OptionParser` table from them and fills them from its result.

/// The value of one property, filled after parsing; a class so that the command struct that
/// holds the property sees what the parser put in it.
public final class ArgumentBox<Value> {
    var value: Value
    init(_ value: Value) { self.value = value }
}

/// A value an option or argument can take: parsed from its word, its choices listed in help
/// and completions.
public protocol ExpressibleByArgument {
    init?(argument: String)
    /// Every value it can take (an enumeration's), or none for free text.
    static var allValueStrings: [String] { get }
    /// How `--help` shows it as a default.
    var defaultValueDescription: String { get }
}

extension ExpressibleByArgument {
    public static var allValueStrings: [String] { [] }
    public var defaultValueDescription: String { "\(self)" }
}

extension ExpressibleByArgument where Self: RawRepresentable, RawValue == String {
    public init?(argument: String) { self.init(rawValue: argument) }
    public var defaultValueDescription: String { rawValue }
}

extension ExpressibleByArgument where Self: RawRepresentable, RawValue == String, Self: CaseIterable {
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

extension String: ExpressibleByArgument {
    public init?(argument: String) { self = argument }
}

extension Int: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

extension Double: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

/// An option's help line and the name of its value: `ArgumentHelp("…", valueName: "path")`,
/// or a string literal.
public struct ArgumentHelp: ExpressibleByStringLiteral, Sendable {
    public var text: String
    public var valueName: String?
    public var discussion: String
    public var hidden = false

    public init(
        _ text: String = "", discussion: String = "", valueName: String? = nil,
        visibility: ArgumentVisibility = .default
    ) {
        self.text = text
        self.discussion = discussion
        self.valueName = valueName
        self.hidden = visibility == .hidden
    }

    public init(stringLiteral value: String) { self.init(value) }

    /// Not in help or completions (options programs pass each other).
    public static let hidden = ArgumentHelp(visibility: .hidden)
}

/// Whether an option group is listed in help.
public enum ArgumentVisibility: Sendable, Equatable {
    case `default`, hidden
}

/// An option's name: the property's, in kebab case (`secretFile`: `--secret-file`), or given.
public struct NameSpecification: Sendable {
    var long: String?
    var short: Character?
    public static let long = NameSpecification()
    public static func customLong(_ name: String) -> NameSpecification { NameSpecification(long: name) }
    public static let shortAndLong = NameSpecification(long: nil, short: "*")

    /// The names for the property `label`, long last (the name results are filed under).
    func names(for label: String) -> [String] {
        let long = "--" + (self.long ?? kebab(label))
        guard let short else { return [long] }
        return ["-" + String(short == "*" ? kebab(label).first! : short), long]
    }
}

/// How a shell completes a value.
public enum CompletionKind: Sendable {
    case file(extensions: [String] = [])
    case directory
    case list([String])

    var completion: OptionParser.Option.Completion {
        switch self {
        case .file: .file
        case .directory: .directory
        case .list(let words): .words(words)
        }
    }
}

/// Kept for the declarations' spelling: every option's value is the next word, even one that
/// starts with `-` (`--tolerance -5` is then refused by the option's own check).
public struct SingleValueParsingStrategy: Sendable {
    public static let next = SingleValueParsingStrategy()
    public static let unconditional = SingleValueParsingStrategy()
}

/// A usage error found by a command's `validate()`: exits 64 naming the command's help.
public struct ValidationError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Ends the program with this status and no message: the verdict of `verify`, say.
public struct ExitCode: Error, Equatable {
    public var rawValue: Int32
    public init(_ rawValue: Int32) { self.rawValue = rawValue }
}

/// `secretFile` as `secret-file`: the long name of a property.
func kebab(_ label: String) -> String {
    var result = ""
    var previousLower = false
    for character in label {
        if character.isUppercase {
            if previousLower { result += "-" }
            result += character.lowercased()
            previousLower = false
        } else {
            result.append(character)
            previousLower = character.isLowercase || character.isNumber
        }
    }
    return result
}
