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
    /// An option without a default, which must be given.
    var required = false
}

/// `word` as the value of `name`, or a usage error that lists the values it can take.
func argumentValue<T: ExpressibleByArgument>(_ word: String, for name: String) throws -> T {
    if let value = T(argument: word) { return value }
    let choices = T.allValueStrings.isEmpty ? "" : " (one of: \(T.allValueStrings.joined(separator: ", ")))"
    throw KeysatError(.usage, "the value '\(word)' is invalid for '\(name)'\(choices)")
}
