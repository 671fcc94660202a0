/// Turns a filter's JSON into `EventFilter`'s clauses, refusing anything it does not define
/// with the path to the offending part (`at data.plan: unknown operator '$regex'`).
struct FilterCompiler {
    private typealias Clause = EventFilter.Clause
    private typealias Condition = EventFilter.Condition

    /// Operators on a field's value.
    private static let valueOperators: Set<String> = [
        "$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists", "$startsWith", "$not",
    ]

    /// A filter: an object of fields and `$and`/`$or`/`$not`.
    func filter(_ value: JSONValue, at path: String) throws -> EventFilter.Clause {
        try checkDepth(value, at: path)
        guard case .object(let members) = value else {
            throw failure(path, "a filter must be a JSON object, not \(Self.kind(value))")
        }
        try checkDuplicates(members, at: path)
        var clauses: [Clause] = []
        for (key, member) in members {
            let here = Self.path(path, key)
            switch key {
            case "$and", "$or":
                guard case .array(let elements) = member, !elements.isEmpty else {
                    throw failure(here, "'\(key)' takes a non-empty array of filters")
                }
                let parts = try elements.enumerated().map { try filter($1, at: here + "[\($0)]") }
                clauses.append(key == "$and" ? .all(parts) : .any(parts))
            case "$not":
                clauses.append(.not(try filter(member, at: here)))
            case _ where Self.valueOperators.contains(key):
                throw failure(path, "'\(key)' applies to a field's value: write {\"FIELD\": {\"\(key)\": …}}")
            case _ where key.hasPrefix("$"):
                throw failure(path, "unknown operator '\(key)'")
            default:
                clauses.append(.field(key, try condition(member, at: here)))
            }
        }
        return clauses.count == 1 ? clauses[0] : .all(clauses)
    }

    /// What a field's value must be: a value (`$eq`), a nested filter, or operators.
    private func condition(_ value: JSONValue, at path: String) throws -> EventFilter.Condition {
        guard case .object(let members) = value else { return .equal(value) }
        try checkDuplicates(members, at: path)
        let operators = members.filter { $0.key.hasPrefix("$") }
        if operators.isEmpty {
            return .object(try members.map { .field($0.key, try condition($0.value, at: Self.path(path, $0.key))) })
        }
        if let field = members.first(where: { !$0.key.hasPrefix("$") }) {
            throw failure(
                path, "mixes operators ('\(operators[0].key)') with fields ('\(field.key)'): use $and")
        }
        let conditions = try members.map { try valueOperator($0.key, $0.value, at: path) }
        return conditions.count == 1 ? conditions[0] : .all(conditions)
    }

    private func valueOperator(_ name: String, _ operand: JSONValue, at path: String) throws
        -> EventFilter.Condition
    {
        switch name {
        case "$eq": return .equal(operand)
        case "$ne": return .not(.equal(operand))
        case "$in", "$nin":
            guard case .array(let values) = operand else {
                throw failure(path, "'\(name)' takes an array of values, not \(Self.kind(operand))")
            }
            return name == "$in" ? .oneOf(values) : .not(.oneOf(values))
        case "$gt", "$gte", "$lt", "$lte":
            switch operand {
            case .number, .string: return .compare(EventFilter.Comparison(rawValue: name)!, operand)
            default:
                throw failure(
                    path, "'\(name)' compares numbers with numbers and strings with strings, not \(Self.kind(operand))")
            }
        case "$exists":
            guard case .bool(let wanted) = operand else {
                throw failure(path, "'$exists' takes true or false, not \(Self.kind(operand))")
            }
            return .exists(wanted)
        case "$startsWith":
            guard case .string(let prefix) = operand else {
                throw failure(path, "'$startsWith' takes a string, not \(Self.kind(operand))")
            }
            return .startsWith(prefix)
        case "$not": return .not(try condition(operand, at: Self.path(path, "$not")))
        case "$and", "$or":
            throw failure(path, "'\(name)' combines filters: put it beside the fields, not in a field's value")
        default: throw failure(path, "unknown operator '\(name)'")
        }
    }

    private func checkDuplicates(_ members: [(key: String, value: JSONValue)], at path: String) throws {
        var seen: Set<[Unicode.Scalar]> = []
        for member in members where !seen.insert(Array(member.key.unicodeScalars)).inserted {
            throw failure(path, "duplicate key \(JSONText.string(member.key))")
        }
    }

    /// Refuses objects and arrays nested deeper than `EventFilter.maximumDepth`, naming the
    /// first place that is.
    private func checkDepth(_ value: JSONValue, at path: String, depth: Int = 0) throws {
        switch value {
        case .object(let members):
            guard depth < EventFilter.maximumDepth else {
                throw failure(path, "nested deeper than \(EventFilter.maximumDepth) levels")
            }
            for member in members { try checkDepth(member.value, at: Self.path(path, member.key), depth: depth + 1) }
        case .array(let elements):
            guard depth < EventFilter.maximumDepth else {
                throw failure(path, "nested deeper than \(EventFilter.maximumDepth) levels")
            }
            for (index, element) in elements.enumerated() {
                try checkDepth(element, at: path + "[\(index)]", depth: depth + 1)
            }
        default: return
        }
    }

    private func failure(_ path: String, _ reason: String) -> KeysatError {
        KeysatError(.data, path.isEmpty ? "filter: \(reason)" : "filter: at \(path): \(reason)")
    }

    /// `path` and `key` as `data.plan`; a key that is not a plain name is quoted as JSON.
    private static func path(_ path: String, _ key: String) -> String {
        let plain =
            !key.isEmpty
            && key.unicodeScalars.allSatisfy { $0.properties.isAlphabetic && $0.isASCII || ("0"..."9").contains($0) || "_-$".unicodeScalars.contains($0) }
        let name = plain ? key : JSONText.string(key)
        return path.isEmpty ? name : path + "." + name
    }

    private static func kind(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
