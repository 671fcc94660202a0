import KeysatCommandLine

/// A property of a command that the parser fills: `@Option`, `@Flag`, `@Argument`, `@OptionGroup`.
protocol ArgumentSlot {
    func declarations(label: String) -> [Declaration]
    /// Fills the property from the parse; arguments take their words from `positionals` in order.
    func fill(label: String, from parsed: OptionParser.Parsed, positionals: inout [String]) throws
}
