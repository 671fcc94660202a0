/// Event type names: 1–128 characters of `A-Z a-z 0-9 . _ : -`, not beginning with `-`.
public enum EventType {
    public static let maximumLength = 128

    /// The event types the Keysat licensing service sends.
    public static let catalogue = [
        "license.issued", "license.revoked", "license.suspended", "machine.activated", "invoice.settled",
    ]

    /// Checks an event type name.
    /// - Throws: `KeysatError` (data, 65) saying what is wrong with it.
    public static func validate(_ name: String) throws {
        if name.isEmpty { throw KeysatError(.data, "event type is empty") }
        if name.utf8.count > maximumLength {
            throw KeysatError(
                .data, "event type is longer than \(maximumLength) characters")
        }
        // A leading '-' reads as an option wherever the name is passed on as an argument (a
        // filter, a script, our own `deliveries list --event-type`): refused everywhere, here.
        if name.hasPrefix("-") {
            throw KeysatError(.data, "event type \(JSONText.string(name)) begins with '-'")
        }
        for byte in name.utf8 where !isAllowed(byte) {
            throw KeysatError(
                .data,
                "event type \(JSONText.string(name)) has a character outside A-Z a-z 0-9 . _ : -")
        }
    }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: ":"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}

/// The body every receiver gets: `{"event_type":T,"timestamp":NOW,"data":DATA}`, and
/// `,"test":true` last in a sample (`keysat-webhooks trigger`), which receivers may ignore in
/// production (man/keysat-webhooks.7). Real events carry no `test` member at all.
public enum Envelope {
    /// Builds the envelope around `data`, which must already be valid JSON; its bytes are
    /// embedded unchanged but for surrounding white space. `test` marks a sample.
    public static func make(
        eventType: String, timestamp: Timestamp, data: [UInt8], test: Bool = false
    ) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + eventType.utf8.count + 80)
        out += Array("{\"event_type\":".utf8)
        out += Array(JSONText.string(eventType).utf8)
        out += Array(",\"timestamp\":\"".utf8)
        out += Array(timestamp.rfc3339.utf8)
        out += Array("\",\"data\":".utf8)
        out += trimmed(data)
        if test { out += Array(",\"test\":true".utf8) }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// `bytes` without leading and trailing JSON white space.
    public static func trimmed(_ bytes: [UInt8]) -> ArraySlice<UInt8> {
        func isSpace(_ byte: UInt8) -> Bool {
            byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
        }
        guard let first = bytes.firstIndex(where: { !isSpace($0) }),
            let last = bytes.lastIndex(where: { !isSpace($0) })
        else { return [] }
        return bytes[first...last]
    }
}
