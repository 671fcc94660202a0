/// Kept for the declarations' spelling: every option's value is the next word, even one that
/// starts with `-` (`--tolerance -5` is then refused by the option's own check).
public struct SingleValueParsingStrategy: Sendable {
    public static let next = SingleValueParsingStrategy()
    public static let unconditional = SingleValueParsingStrategy()
}
