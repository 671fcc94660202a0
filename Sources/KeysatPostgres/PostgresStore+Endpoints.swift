public import KeysatCore
public import KeysatStore

/// The endpoints and their secrets: SQLite's semantics and errors (`WebhookStore`'s), times from
/// the database's clock, read back as the programs' RFC 3339 text.
extension PostgresStore: EndpointCatalogue {
    /// The columns `endpoint(from:)` reads, in its order.
    static let endpointColumns = """
        id, url, secret, event_types, active, description, keysat_rfc3339(created_at),
        keysat_rfc3339(updated_at), disabled_reason, keysat_rfc3339(disabled_at), ordered,
        retry_schedule, retry_jitter, custom_headers, client_cert, client_key, signing_key,
        coalesce(keysat_signature, 1), rate_limit, event_filter, order_by, order_on_dead
        """

    /// An endpoint from a row of `endpointColumns`. Active and ordered mean the column is 1,
    /// as on SQLite (`active = 1` is the one definition); `event_types` that are not JSON
    /// subscribe to nothing, as SQLite's `json_valid` makes them.
    static func endpoint(from row: [String?]) -> Endpoint {
        var endpoint = Endpoint(
            id: row[0] ?? "", url: row[1] ?? "", secret: row[2] ?? "",
            eventTypes: JSONStrings.topLevel(row[3] ?? "") ?? [], active: row[4] == "1",
            description: row[5] ?? "", createdAt: row[6] ?? "", updatedAt: row[7] ?? "")
        endpoint.disabledReason = row[8]
        endpoint.disabledAt = row[9]
        endpoint.ordered = row[10] == "1"
        (endpoint.settings, endpoint.settingsProblem) = EndpointSettings.fromStored(
            retrySchedule: row[11], retryJitter: row[12], customHeaders: row[13], clientCert: row[14],
            clientKey: row[15], rateLimit: row[18], filter: row[19], orderBy: row[20], orderOnDead: row[21])
        endpoint.signingKey = row[16]
        endpoint.keysatSignature = row[17] != "0"
        return endpoint
    }

    /// The settings' columns as stored, `retry_schedule` to `event_filter`: NULL for the
    /// defaults, as on SQLite.
    static func settingsValues(_ settings: EndpointSettings) -> [String?] {
        [
            settings.retrySchedule.stored, settings.retryJitterPercent == 0 ? nil : String(settings.retryJitterPercent),
            settings.customHeaders.stored, settings.clientCertificate?.certificate, settings.clientCertificate?.key,
            settings.rateLimit?.stored, settings.filter,
        ]
    }

    /// `event_types` as stored: a JSON array of strings, `["*"]` for none given.
    static func eventTypesColumn(_ eventTypes: [String]) -> String {
        JSONText.array((eventTypes.isEmpty ? ["*"] : eventTypes).map { JSONText.string($0) })
    }

    /// Adds an active endpoint, created now by the database's clock, and returns it.
    public func addEndpoint(
        url: String, secret: String, eventTypes: [String], description: String, ordered: Bool,
        settings: EndpointSettings, signing: EndpointSigning, using generator: inout some RandomNumberGenerator
    ) throws -> Endpoint {
        let id = Identifiers.uuid4(using: &generator)
        let added = try rows(
            """
            INSERT INTO webhook_endpoints
                (id, url, secret, event_types, active, description, created_at, updated_at, ordered,
                 retry_schedule, retry_jitter, custom_headers, client_cert, client_key, rate_limit, event_filter,
                 signing_key, keysat_signature, order_by, order_on_dead)
            VALUES ($1, $2, $3, $4, 1, $5, now(), now(), $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::integer, $16, $17)
            RETURNING \(Self.endpointColumns)
            """,
            [id, url, secret, Self.eventTypesColumn(eventTypes), description, ordered ? "1" : "0"]
                + Self.settingsValues(settings) + [signing.signingKey, signing.keysatSignature ? nil : "0"]
                + [settings.orderBy?.description, settings.storedOrderOnDead])
        guard let row = added.first else {
            throw KeysatError(.internal, "PostgreSQL: INSERT returned no row")
        }
        return Self.endpoint(from: row)
    }

    /// Every endpoint, oldest first.
    public func endpoints() throws -> [Endpoint] {
        try rows("SELECT \(Self.endpointColumns) FROM webhook_endpoints ORDER BY created_at, id").map(
            Self.endpoint(from:))
    }

    /// The endpoint with this id.
    /// - Throws: `KeysatError` (data, 65) when there is none (`WebhookStore.noSuchEndpoint`).
    public func endpoint(id: String) throws -> Endpoint {
        guard
            let row = try rows("SELECT \(Self.endpointColumns) FROM webhook_endpoints WHERE id = $1", [id])
                .first
        else { throw WebhookStore.noSuchEndpoint(id) }
        return Self.endpoint(from: row)
    }

    /// Changes an endpoint's URL, event types, description or ordering (`nil` keeps the current
    /// one), in one statement: another host's change to another field meanwhile is kept.
    /// - Returns: the endpoint as it is now.
    @discardableResult
    public func updateEndpoint(
        id: String, url: String?, eventTypes: [String]?, description: String?, ordered: Bool?,
        settings: EndpointSettings.Change
    ) throws -> Endpoint {
        guard settings.changesHeaders else { return try update(id, url, eventTypes, description, ordered, settings, headers: nil) }
        // Headers are edited one by one: read under the row's lock, changed, written back.
        return try transaction {
            guard let row = try rows("SELECT \(Self.endpointColumns) FROM webhook_endpoints WHERE id = $1 FOR UPDATE", [id]).first
            else { throw WebhookStore.noSuchEndpoint(id) }
            let headers = try settings.applied(to: Self.endpoint(from: row).settings).customHeaders
            return try update(id, url, eventTypes, description, ordered, settings, headers: headers)
        }
    }

    /// The one UPDATE of `updateEndpoint`: `headers`, when given, replace the stored ones.
    private func update(
        _ id: String, _ url: String?, _ eventTypes: [String]?, _ description: String?, _ ordered: Bool?,
        _ settings: EndpointSettings.Change, headers: CustomHeaders?
    ) throws -> Endpoint {
        // A setting is changed only when asked for ($6, $8, $10): its new value may be NULL (the default).
        let updated = try rows(
            """
            UPDATE webhook_endpoints
            SET url = coalesce($2, url), event_types = coalesce($3, event_types),
                description = coalesce($4, description), ordered = coalesce($5::integer, ordered),
                retry_schedule = CASE WHEN $6::boolean THEN $7 ELSE retry_schedule END,
                retry_jitter = CASE WHEN $8::boolean THEN $9::integer ELSE retry_jitter END,
                custom_headers = CASE WHEN $10::boolean THEN $11 ELSE custom_headers END,
                client_cert = CASE WHEN $12::boolean THEN $13 ELSE client_cert END,
                client_key = CASE WHEN $12::boolean THEN $14 ELSE client_key END,
                rate_limit = CASE WHEN $15::boolean THEN $16 ELSE rate_limit END,
                event_filter = CASE WHEN $17::boolean THEN $18 ELSE event_filter END,
                order_by = CASE WHEN $19::boolean THEN $20 ELSE order_by END,
                order_on_dead = CASE WHEN $21::boolean THEN $22 ELSE order_on_dead END,
                updated_at = now()
            WHERE id = $1
            RETURNING \(Self.endpointColumns)
            """,
            [
                id, url, eventTypes.map(Self.eventTypesColumn), description, ordered.map { $0 ? "1" : "0" },
                settings.retrySchedule == nil ? "false" : "true", settings.retrySchedule?.stored,
                settings.retryJitterPercent == nil ? "false" : "true",
                settings.retryJitterPercent.flatMap { $0 == 0 ? nil : String($0) },
                headers == nil ? "false" : "true", headers?.stored,
                settings.clientCertificate == nil ? "false" : "true", settings.clientCertificate??.certificate,
                settings.clientCertificate??.key,
                settings.rateLimit == nil ? "false" : "true", settings.rateLimit??.stored,
                settings.filter == nil ? "false" : "true", settings.filter ?? nil,
                settings.orderBy == nil ? "false" : "true", settings.orderBy??.description,
                settings.holdOnDead == nil ? "false" : "true", settings.holdOnDead == true ? "hold" : nil,
            ])
        guard let row = updated.first else { throw WebhookStore.noSuchEndpoint(id) }
        return Self.endpoint(from: row)
    }

    /// Enables or disables an endpoint; `false` if it already was in that state. Either by
    /// hand clears the reason keysat-deliver may have recorded.
    @discardableResult
    public func setEndpointActive(id: String, _ active: Bool) throws -> Bool {
        try transaction { try switchActive(id: id, active) }
    }

    /// `setEndpointActive`, in the caller's transaction. Any enable resets the failing streak
    /// and any disable by hand ends the probes (`resetRecovery`), as on SQLite.
    func switchActive(id: String, _ active: Bool) throws -> Bool {
        // Locked, so that two hosts switching it at once answer true once.
        guard
            let current = try rows(
                "SELECT active = 1 FROM webhook_endpoints WHERE id = $1 FOR UPDATE", [id]
            ).first
        else { throw WebhookStore.noSuchEndpoint(id) }
        try resetRecovery(endpointID: id, enabling: active)
        if (current[0] == "t") == active { return false }
        try run(
            """
            UPDATE webhook_endpoints
            SET active = $2, updated_at = now(), disabled_reason = NULL, disabled_at = NULL
            WHERE id = $1
            """, [id, active ? "1" : "0"])
        return true
    }

    /// Pending deliveries (neither delivered nor dead) of one endpoint.
    public func pendingDeliveryCount(endpointID: String) throws -> Int {
        let count = try value(
            """
            SELECT count(*) FROM webhook_deliveries
            WHERE endpoint_id = $1 AND \(DeliveryRecord.State.pending.condition(""))
            """, [endpointID])
        return Int(count ?? "0") ?? 0
    }

    /// Deletes an endpoint with its deliveries and their attempts, in one transaction.
    ///
    /// An enqueue on another host that read the endpoint before this commits may still add a
    /// delivery for it afterwards (no foreign key, as on SQLite, where one writer at a time
    /// makes it impossible): the next run dead-letters that delivery, its endpoint gone.
    ///
    /// - Parameter force: also when it still has pending deliveries.
    /// - Returns: how many deliveries were deleted with it.
    /// - Throws: `KeysatError` (data) for an unknown id, or pending deliveries without `force`.
    public func removeEndpoint(id: String, force: Bool) throws -> Int {
        try transaction {
            guard try !rows("SELECT 1 FROM webhook_endpoints WHERE id = $1 FOR UPDATE", [id]).isEmpty else {
                throw WebhookStore.noSuchEndpoint(id)
            }
            let pending = try pendingDeliveryCount(endpointID: id)
            if pending > 0 && !force {
                throw KeysatError(
                    .data,
                    "endpoint \(id) has \(pending) pending deliver\(pending == 1 ? "y" : "ies"); "
                        + "disable it with 'keysat-webhooks endpoint disable \(id)' to keep its history, "
                        + "or pass --force to delete them")
            }
            // Attempts are a delivery's by its id (PostgreSQL's history has no second path).
            try run(
                """
                DELETE FROM webhook_delivery_attempts AS a USING webhook_deliveries AS d
                WHERE a.delivery_id = d.id AND d.endpoint_id = $1
                """, [id])
            let deleted = try run("DELETE FROM webhook_deliveries WHERE endpoint_id = $1", [id])
            try run("DELETE FROM webhook_endpoints WHERE id = $1", [id])
            return deleted
        }
    }

    /// Makes `secret` the endpoint's current secret and keeps the old one signing until
    /// `graceSeconds` from now by the database's clock (0: the old one stops at once and is
    /// erased from the row; its old version stays in the table's pages until vacuum).
    /// - Returns: the endpoint with its new secret.
    public func rotateSecret(id: String, to secret: String, signingKey: String?, graceSeconds: Int64) throws
        -> Endpoint
    {
        // SET reads the row as it was: `previous_secret = secret` keeps the old one, and the old
        // signing key signs through the same grace.
        let rotated = try rows(
            """
            UPDATE webhook_endpoints
            SET secret = $2,
                previous_secret = CASE WHEN $3::bigint > 0 THEN secret END,
                previous_secret_expires_at =
                    CASE WHEN $3::bigint > 0 THEN now() + $3::bigint * interval '1 second' END,
                signing_key = coalesce($4, signing_key),
                previous_signing_key = CASE WHEN $3::bigint > 0 AND $4 IS NOT NULL THEN signing_key END,
                updated_at = now()
            WHERE id = $1
            RETURNING \(Self.endpointColumns)
            """, [id, secret, String(graceSeconds), signingKey])
        guard let row = rotated.first else { throw WebhookStore.noSuchEndpoint(id) }
        return Self.endpoint(from: row)
    }

    /// When the endpoint's previous secret stops signing, if it still does.
    public func previousSecretExpiry(id: String) throws -> String? {
        try value(
            """
            SELECT keysat_rfc3339(previous_secret_expires_at) FROM webhook_endpoints
            WHERE id = $1 AND previous_secret IS NOT NULL
            """, [id])
    }

    public func updateSigning(id: String, _ change: EndpointSigning.Change) throws -> Endpoint {
        // Each part changed only when asked for ($2, $4): its new value may be NULL.
        let key: String?
        switch change.signingKey {
        case .set(let text): key = text
        case .remove, nil: key = nil
        }
        let updated = try rows(
            """
            UPDATE webhook_endpoints
            SET signing_key = CASE WHEN $2::boolean THEN $3 ELSE signing_key END,
                previous_signing_key = CASE WHEN $2::boolean THEN NULL ELSE previous_signing_key END,
                keysat_signature = CASE WHEN $4::boolean THEN $5::integer ELSE keysat_signature END,
                updated_at = CASE WHEN $2::boolean OR $4::boolean THEN now() ELSE updated_at END
            WHERE id = $1
            RETURNING \(Self.endpointColumns)
            """,
            [
                id, change.signingKey == nil ? "false" : "true", key,
                change.keysatSignature == nil ? "false" : "true", change.keysatSignature == false ? "0" : nil,
            ])
        guard let row = updated.first else { throw WebhookStore.noSuchEndpoint(id) }
        return Self.endpoint(from: row)
    }
}
