/// Turns a filter's JSON into `EventFilter`'s clauses, refusing anything it does not define
/// with the path to the offending part (`at data.plan: unknown operator '$regex'`).
struct FilterCompiler {
    private typealias Clause = EventFilter.Clause
    private typealias Condition = EventFilter.Condition

    /// Whether `name` is an operator on a field's value. A switch, not a `Set`: a set of
    /// strings costs keysat-enqueue's start the runtime's instantiation of its storage type.
    private static func isValueOperator(_ name: String) -> Bool {
        switch name {
        case "$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists", "$startsWith", "$not": true
        default: false
        }
    }

    /// The filter `value`, parsed from `text`. Objects and arrays nested deeper than
    /// `EventFilter.maximumDepth` are refused first, naming the first place that is (paths are
    /// spelt only then: keysat-enqueue compiles valid filters).
    func compile(_ value: JSONValue, text: [UInt8]) throws -> EventFilter.Clause {
        if Self.nesting(text) > EventFilter.maximumDepth { try checkDepth(value, at: "", depth: 0) }
        return try filter(value, at: "")
    }

    /// A filter: an object of fields and `$and`/`$or`/`$not`.
    private func filter(_ value: JSONValue, at path: String) throws -> EventFilter.Clause {
        guard case .object(let keys, let values) = value else {
            throw failure(path, "a filter must be a JSON object, not \(Self.kind(value))")
        }
        try checkDuplicates(keys, at: path)
        var clause = Clause.always
        for index in keys.indices {
            let key = keys[index]
            let member = values[index]
            let here = Self.path(path, key)
            switch key {
            case "$and", "$or":
                guard case .array(let elements) = member, !elements.isEmpty else {
                    throw failure(here, "'\(key)' takes a non-empty array of filters")
                }
                var parts = try filter(elements[0], at: here + "[0]")
                for place in elements.indices.dropFirst() {
                    let part = try filter(elements[place], at: here + "[\(place)]")
                    parts = key == "$and" ? .both(parts, part) : .either(parts, part)
                }
                clause = clause.and(parts)
            case "$not":
                clause = clause.and(.not(try filter(member, at: here)))
            case _ where Self.isValueOperator(key):
                throw failure(path, "'\(key)' applies to a field's value: write {\"FIELD\": {\"\(key)\": …}}")
            case _ where key.hasPrefix("$"):
                throw failure(path, "unknown operator '\(key)'")
            default:
                clause = clause.and(.field(key, try condition(member, at: here)))
            }
        }
        return clause
    }

    /// What a field's value must be: a value (`$eq`), a nested filter, or operators.
    private func condition(_ value: JSONValue, at path: String) throws -> EventFilter.Condition {
        guard case .object(let keys, let values) = value else { return .equal(value) }
        try checkDuplicates(keys, at: path)
        guard let firstOperator = keys.first(where: { $0.hasPrefix("$") }) else {
            var clause = Clause.always
            for index in keys.indices {
                let key = keys[index]
                clause = clause.and(.field(key, try condition(values[index], at: Self.path(path, key))))
            }
            return .object(clause)
        }
        if let field = keys.first(where: { !$0.hasPrefix("$") }) {
            throw failure(path, "mixes operators ('\(firstOperator)') with fields ('\(field)'): use $and")
        }
        var conditions = try valueOperator(keys[0], values[0], at: path)
        for index in keys.indices.dropFirst() {
            conditions = .both(conditions, try valueOperator(keys[index], values[index], at: path))
        }
        return conditions
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
            case .number, .string: return .compare(Self.comparison(name), operand)
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

    /// Pairwise, by scalars: a `Set` of keys cost keysat-enqueue's start 0.4 M instructions of
    /// the runtime's first use of `Hashable` (callgrind), more than all the rest of a filter;
    /// a filter is at most 8 KiB, so its objects have at most some 1,300 keys.
    private static func comparison(_ name: String) -> EventFilter.Comparison {
        switch name {
        case "$gt": .greater
        case "$gte": .greaterOrEqual
        case "$lt": .less
        default: .lessOrEqual
        }
    }

    private func checkDuplicates(_ keys: [String], at path: String) throws {
        for index in keys.indices {
            let key = keys[index].unicodeScalars
            if keys[..<index].contains(where: { $0.unicodeScalars.elementsEqual(key) }) {
                throw failure(path, "duplicate key \(JSONText.string(keys[index]))")
            }
        }
    }

    /// Levels of objects and arrays in `text` (valid JSON): its brackets outside strings, one
    /// pass over the bytes. A walk of the values to measure them was a tenth of what compiling
    /// the bench's filters cost (callgrind); they are walked only when too deep, to name where.
    private static func nesting(_ text: [UInt8]) -> Int {
        var level = 0
        var deepest = 0
        var inString = false
        var escaped = false
        for byte in text {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                level += 1
                deepest = max(deepest, level)
            case UInt8(ascii: "}"), UInt8(ascii: "]"): level -= 1
            default: break
            }
        }
        return deepest
    }

    private func checkDepth(_ value: JSONValue, at path: String, depth: Int) throws {
        switch value {
        case .object(let keys, let values):
            guard depth < EventFilter.maximumDepth else {
                throw failure(path, "nested deeper than \(EventFilter.maximumDepth) levels")
            }
            for index in keys.indices {
                try checkDepth(values[index], at: Self.path(path, keys[index]), depth: depth + 1)
            }
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
            && key.utf8.allSatisfy {
                switch $0 {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "$"):
                    true
                default: false
                }
            }
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
