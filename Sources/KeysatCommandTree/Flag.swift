import KeysatCommandLine
import KeysatCore

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
