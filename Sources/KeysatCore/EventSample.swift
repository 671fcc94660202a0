/// Example events of the types Keysat sends (`EventType.catalogue`): what
/// `keysat-webhooks trigger` enqueues, marked as a test, so that a receiver's author sees a
/// realistic, signed event of any type without making a real license. One sample per type;
/// man/keysat-webhooks.1 lists them (TRIGGER'S SAMPLES).
public enum EventSample {
    /// Each catalogued type's sample data, one JSON object, in the catalogue's order.
    public static let catalogue: [(eventType: String, data: String)] = [
        (
            "license.issued",
            #"{"license_id":"lic_01JD7Q5V8X2M4N6P8R0T2W4Y6A","license_key":"KSAT-7QX2-M4NP-8R0T-2W4Y","product_id":"prod_desktop","plan":"pro","seats":5,"customer_id":"cus_01JD7Q4ZK3","customer_email":"jane.doe@example.com","expires_at":"2027-12-06T00:00:00Z"}"#
        ),
        (
            "license.revoked",
            #"{"license_id":"lic_01JD7Q5V8X2M4N6P8R0T2W4Y6A","product_id":"prod_desktop","customer_id":"cus_01JD7Q4ZK3","customer_email":"jane.doe@example.com","reason":"refunded","revoked_at":"2026-12-06T09:30:00Z"}"#
        ),
        (
            "license.suspended",
            #"{"license_id":"lic_01JD7Q5V8X2M4N6P8R0T2W4Y6A","product_id":"prod_desktop","customer_id":"cus_01JD7Q4ZK3","customer_email":"jane.doe@example.com","reason":"payment_failed","suspended_at":"2026-12-06T09:30:00Z"}"#
        ),
        (
            "machine.activated",
            #"{"machine_id":"mac_01JD7R0B3C5D","license_id":"lic_01JD7Q5V8X2M4N6P8R0T2W4Y6A","fingerprint":"3f2a9c4e7b1d8f60","hostname":"build-07","platform":"linux-x86_64","seats_used":2,"seats":5,"activated_at":"2026-12-06T09:30:00Z"}"#
        ),
        (
            "invoice.settled",
            #"{"invoice_id":"inv_01JD7S2E4F6G","customer_id":"cus_01JD7Q4ZK3","customer_email":"jane.doe@example.com","license_id":"lic_01JD7Q5V8X2M4N6P8R0T2W4Y6A","amount":4900,"currency":"EUR","method":"lightning","settled_at":"2026-12-06T09:30:00Z"}"#
        ),
    ]

    /// The sample data of `eventType`, or `nil` for a type without one.
    public static func data(of eventType: String) -> String? {
        catalogue.first { $0.eventType == eventType }?.data
    }

    /// The refusal of a type without a sample, listing those that have one.
    public static func noSample(_ eventType: String) -> KeysatError {
        KeysatError(
            .data,
            "no sample of event type \(JSONText.string(eventType)): samples are of \(catalogue.map(\.eventType).joined(separator: ", ")) (or give the event's data with --data)"
        )
    }
}
