/// How a compiled filter judges an envelope (the rules: `EventFilter`).
extension EventFilter {
    static func holds(_ clause: Clause, on object: JSONValue) -> Bool {
        switch clause {
        case .always: true
        case .field(let key, let condition): holds(condition, on: object.member(key))
        case .both(let first, let second): holds(first, on: object) && holds(second, on: object)
        case .either(let first, let second): holds(first, on: object) || holds(second, on: object)
        case .not(let clause): !holds(clause, on: object)
        }
    }

    /// Whether `value` (`nil`: the field is absent) meets `condition`. Positive conditions need
    /// a value, and hold on an array when they hold on one of its elements.
    static func holds(_ condition: Condition, on value: JSONValue?) -> Bool {
        switch condition {
        case .exists(let wanted): return (value != nil) == wanted
        case .both(let first, let second): return holds(first, on: value) && holds(second, on: value)
        case .not(let condition): return !holds(condition, on: value)
        default: break
        }
        guard let value else { return false }
        switch condition {
        case .equal(let wanted): return value.isSame(as: wanted) || anyElement(of: value) { $0.isSame(as: wanted) }
        case .oneOf(let wanted):
            return wanted.contains { one in value.isSame(as: one) || anyElement(of: value) { $0.isSame(as: one) } }
        case .compare(let comparison, let operand):
            return compares(value, comparison, operand) || anyElement(of: value) { compares($0, comparison, operand) }
        case .startsWith(let prefix):
            return startsWith(value, prefix) || anyElement(of: value) { startsWith($0, prefix) }
        case .object(let clause):
            func matches(_ candidate: JSONValue) -> Bool {
                guard case .object = candidate else { return false }
                return holds(clause, on: candidate)
            }
            return matches(value) || anyElement(of: value, matches)
        case .exists, .both, .not: return false  // answered above
        }
    }

    private static func anyElement(of value: JSONValue, _ test: (JSONValue) -> Bool) -> Bool {
        guard case .array(let elements) = value else { return false }
        return elements.contains(where: test)
    }

    /// Numbers with numbers, strings with strings (Unicode scalar order, which is UTF-8 byte
    /// order); any other pair is not comparable and does not match.
    private static func compares(_ value: JSONValue, _ comparison: Comparison, _ operand: JSONValue) -> Bool {
        let order: Int
        switch (value, operand) {
        case (.number(let a), .number(let b)): order = a < b ? -1 : (a == b ? 0 : 1)
        case (.string(let a), .string(let b)):
            order = a.utf8.lexicographicallyPrecedes(b.utf8) ? -1 : (a.utf8.elementsEqual(b.utf8) ? 0 : 1)
        default: return false
        }
        switch comparison {
        case .greater: return order > 0
        case .greaterOrEqual: return order >= 0
        case .less: return order < 0
        case .lessOrEqual: return order <= 0
        }
    }

    private static func startsWith(_ value: JSONValue, _ prefix: String) -> Bool {
        guard case .string(let string) = value else { return false }
        return string.utf8.starts(with: prefix.utf8)
    }
}
