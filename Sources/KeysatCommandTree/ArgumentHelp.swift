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
