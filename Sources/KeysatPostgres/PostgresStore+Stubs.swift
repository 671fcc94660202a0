public import KeysatCore
public import KeysatStore

// Parts of `WebhookBackend` not yet written for PostgreSQL: each refuses with a clear error
// (69) until its implementation replaces it here.

private func notYet(_ what: String) -> KeysatError {
    KeysatError(.unavailable, "\(what) is not available on PostgreSQL yet")
}

extension PostgresStore: EventQueue {
    public func enqueue(
        eventType: String, data: [UInt8], idempotencyKey: String?,
        using generator: inout some RandomNumberGenerator
    ) throws -> EnqueueResult { throw notYet("enqueue") }
    public func knownEventTypes() throws -> [(name: String, source: WebhookStore.EventTypeSource)] {
        throw notYet("event-types")
    }
    public func isKnownEventType(_ name: String) throws -> Bool { throw notYet("event-types") }
    public func declareEventType(_ name: String) throws -> Bool { throw notYet("event-types") }
    public func forgetEventType(_ name: String) throws -> Bool { throw notYet("event-types") }
}

extension PostgresStore: EndpointCatalogue {
    public func addEndpoint(
        url: String, secret: String, eventTypes: [String], description: String, ordered: Bool,
        using generator: inout some RandomNumberGenerator
    ) throws -> Endpoint { throw notYet("endpoint add") }
    public func endpoints() throws -> [Endpoint] { throw notYet("endpoint list") }
    public func endpoint(id: String) throws -> Endpoint { throw notYet("endpoint show") }
    public func updateEndpoint(id: String, url: String?, eventTypes: [String]?, description: String?, ordered: Bool?)
        throws -> Endpoint
    { throw notYet("endpoint update") }
    public func setEndpointActive(id: String, _ active: Bool) throws -> Bool { throw notYet("endpoint enable") }
    public func pendingDeliveryCount(endpointID: String) throws -> Int { throw notYet("endpoint remove") }
    public func removeEndpoint(id: String, force: Bool) throws -> Int { throw notYet("endpoint remove") }
    public func rotateSecret(id: String, to secret: String, graceSeconds: Int64) throws -> Endpoint {
        throw notYet("endpoint rotate-secret")
    }
    public func previousSecretExpiry(id: String) throws -> String? { throw notYet("endpoint show") }
}

extension PostgresStore: WebhookBackend {}
