import KeysatCommandLine
import KeysatCore

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
