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
