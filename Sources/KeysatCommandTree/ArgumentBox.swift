/// The value of one property, filled after parsing; a class so that the command struct that
/// holds the property sees what the parser put in it.
public final class ArgumentBox<Value> {
    var value: Value
    init(_ value: Value) { self.value = value }
}
