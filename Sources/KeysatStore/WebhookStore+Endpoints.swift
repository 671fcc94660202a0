public import KeysatCore

#if canImport(Glibc)
    import Glibc
#endif

/// Endpoint administration.
extension WebhookStore {
    /// The one definition of an active endpoint, on the columns of table `alias`: `active` is
    /// 1. Another program may write 2, -1 or text there; such an endpoint is neither enqueued
    /// for nor sent to (issue 20: it was sent to, `!= 0`, but never enqueued for, `= 1`).
    static func isActive(_ alias: String) -> String { "(\(alias.isEmpty ? "" : alias + ".")active IS 1)" }

    private static let endpointColumns =
        "id, url, secret, event_types, active, description, created_at, updated_at"

    private func endpoint(from row: Row) throws -> Endpoint {
        var endpoint = Endpoint(
            id: row.string(0), url: row.string(1), secret: row.string(2),
            eventTypes: try eventTypes(row.string(3)), active: row.integer(4) == 1,
            description: row.string(5), createdAt: row.string(6), updatedAt: row.string(7))
        endpoint.disabledReason = row.text(8)
        endpoint.disabledAt = row.text(9)
        endpoint.ordered = row.integer(10) == 1
        (endpoint.settings, endpoint.settingsProblem) = EndpointSettings.fromStored(
            retrySchedule: row.text(11), retryJitter: row.text(12), customHeaders: row.text(13),
            clientCert: row.text(14), clientKey: row.text(15), rateLimit: row.text(18), filter: row.text(21),
            orderBy: row.text(19), orderOnDead: row.text(20))
        endpoint.signingKey = row.text(16)
        endpoint.keysatSignature = row.integer(17) != 0
        return endpoint
    }

    /// The columns `endpoint(from:)` reads after `endpointColumns`.
    private static let endpointMoreColumns = """
        disabled_reason, disabled_at, ordered, retry_schedule, retry_jitter, custom_headers, client_cert, client_key,
        signing_key, coalesce(keysat_signature, 1), rate_limit, order_by, order_on_dead, event_filter
        """

    /// The strings of a stored `event_types` JSON array (SQLite's JSON1 reads it).
    private func eventTypes(_ json: String) throws -> [String] {
        try database.prepare(
            "SELECT value FROM json_each(CASE WHEN json_valid(?1) THEN ?1 ELSE '[]' END) WHERE type = 'text'"
        ).rows([.text(json)]) { $0.string(0) }
    }

    /// Adds an endpoint and returns it.
    public func addEndpoint(
        url: String, secret: String, eventTypes: [String], description: String, ordered: Bool,
        settings: EndpointSettings, signing: EndpointSigning, using generator: inout some RandomNumberGenerator
    ) throws -> Endpoint {
        let now = clock.now().rfc3339
        var endpoint = Endpoint(
            id: Identifiers.uuid4(using: &generator), url: url, secret: secret,
            eventTypes: eventTypes.isEmpty ? ["*"] : eventTypes, active: true,
            description: description, createdAt: now, updatedAt: now)
        endpoint.ordered = ordered
        endpoint.settings = settings
        endpoint.signingKey = signing.signingKey
        endpoint.keysatSignature = signing.keysatSignature
        try database.writeTransaction {
            try database.prepare(
                """
                INSERT INTO webhook_endpoints (\(Self.endpointColumns), ordered, retry_schedule, retry_jitter, custom_headers,
                    client_cert, client_key, rate_limit, event_filter, signing_key, keysat_signature)
                VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
            ).run([
                .text(endpoint.id), .text(url), .text(secret),
                .text(JSONText.array(endpoint.eventTypes.map { JSONText.string($0) })),
                .text(description), .text(now), .text(now), .integer(ordered ? 1 : 0),
            ] + Self.settingsValues(settings) + [
                .optional(signing.signingKey), signing.keysatSignature ? .null : .integer(0),
            ])
            if settings.orderBy != nil || settings.holdOnDead {
                try database.prepare("UPDATE webhook_endpoints SET order_by = ?, order_on_dead = ? WHERE id = ?").run([
                    .optional(settings.orderBy?.description), .optional(settings.storedOrderOnDead), .text(endpoint.id),
                ])
            }
        }
        return endpoint
    }

    /// Every endpoint, oldest first.
    public func endpoints() throws -> [Endpoint] {
        try database.prepare(
            "SELECT \(Self.endpointColumns), \(Self.endpointMoreColumns) FROM webhook_endpoints ORDER BY created_at, id"
        ).rows { try endpoint(from: $0) }
    }

    /// The endpoint with this id.
    /// - Throws: `KeysatError` (data, 65) when there is none.
    public func endpoint(id: String) throws -> Endpoint {
        let found = try database.prepare(
            "SELECT \(Self.endpointColumns), \(Self.endpointMoreColumns) FROM webhook_endpoints WHERE id = ?"
        ).first([.text(id)]) { try endpoint(from: $0) }
        guard let found else { throw Self.noSuchEndpoint(id) }
        return found
    }

    /// The error for an endpoint id that names none, in the same words on every backend.
    public static func noSuchEndpoint(_ id: String) -> KeysatError {
        KeysatError(.data, "no endpoint with id \(JSONText.string(id)) (see 'keysat-webhooks endpoint list')")
    }

    /// Enables or disables an endpoint; returns `false` if it already was in that state.
    @discardableResult
    public func setEndpointActive(id: String, _ active: Bool) throws -> Bool {
        try database.writeTransaction { try switchActive(id: id, active) }
    }

    /// `setEndpointActive`, in the caller's transaction. Any enable resets the failing streak
    /// and any disable by hand ends the probes (`resetRecovery`), whether it changed the
    /// endpoint's state or not.
    func switchActive(id: String, _ active: Bool) throws -> Bool {
        let current = try endpoint(id: id)
        try resetRecovery(endpointID: id, enabling: active)
        if current.active == active { return false }
        // Enabling or disabling by hand clears the reason keysat-deliver may have recorded.
        try database.prepare(
            "UPDATE webhook_endpoints SET active = ?, updated_at = ?, disabled_reason = NULL, disabled_at = NULL WHERE id = ?"
        ).run([.integer(active ? 1 : 0), .text(clock.now().rfc3339), .text(id)])
        return true
    }

    /// Pending deliveries (neither delivered nor dead) of one endpoint.
    public func pendingDeliveryCount(endpointID: String) throws -> Int {
        try database.prepare(
            """
            SELECT count(*) FROM webhook_deliveries
            WHERE endpoint_id = ? AND \(DeliveryRecord.State.pending.condition(""))
            """
        ).first([.text(endpointID)]) { $0.integer(0) ?? 0 } ?? 0
    }

    /// Deletes an endpoint with its deliveries and their attempts, in one transaction.
    ///
    /// - Parameter force: also when it still has pending deliveries.
    /// - Returns: how many deliveries were deleted with it.
    /// - Throws: `KeysatError` (data) for an unknown id, or pending deliveries without `force`.
    public func removeEndpoint(id: String, force: Bool) throws -> Int {
        try database.writeTransaction {
            _ = try endpoint(id: id)
            let pending = try pendingDeliveryCount(endpointID: id)
            if pending > 0 && !force {
                throw KeysatError(
                    .data,
                    "endpoint \(id) has \(pending) pending deliver\(pending == 1 ? "y" : "ies"); "
                        + "disable it with 'keysat-webhooks endpoint disable \(id)' to keep its history, "
                        + "or pass --force to delete them")
            }
            try database.prepare(
                """
                DELETE FROM webhook_delivery_attempts WHERE id IN
                    (SELECT a.id FROM webhook_deliveries AS d JOIN webhook_delivery_attempts AS a
                     ON \(AttemptHistory.of("d", "a")) WHERE d.endpoint_id = ?)
                """
            ).run([.text(id)])
            try database.prepare("DELETE FROM webhook_deliveries WHERE endpoint_id = ?").run([.text(id)])
            let deleted = database.changes
            try database.prepare("DELETE FROM webhook_endpoints WHERE id = ?").run([.text(id)])
            return deleted
        }
    }
}

extension WebhookStore {
    /// Changes an endpoint's URL, event types or description (`nil` keeps the current one).
    /// - Returns: the endpoint as it is now.
    @discardableResult
    public func updateEndpoint(
        id: String, url: String?, eventTypes: [String]?, description: String?, ordered: Bool?,
        settings: EndpointSettings.Change
    ) throws -> Endpoint {
        try database.writeTransaction {
            var endpoint = try endpoint(id: id)
            if let url { endpoint.url = url }
            if let eventTypes { endpoint.eventTypes = eventTypes.isEmpty ? ["*"] : eventTypes }
            if let description { endpoint.description = description }
            if let ordered { endpoint.ordered = ordered }
            endpoint.updatedAt = clock.now().rfc3339
            try database.prepare(
                "UPDATE webhook_endpoints SET url = ?, event_types = ?, description = ?, ordered = ?, updated_at = ? WHERE id = ?"
            ).run([
                .text(endpoint.url), .text(JSONText.array(endpoint.eventTypes.map { JSONText.string($0) })),
                .text(endpoint.description), .integer(endpoint.ordered ? 1 : 0), .text(endpoint.updatedAt),
                .text(id),
            ])
            try writeSettings(settings, of: &endpoint)
            return endpoint
        }
    }

    /// Writes the settings `change` names, each to its own columns, and into `endpoint`. Only
    /// what was asked for: a setting another program wrote and this one cannot read stays as it
    /// is unless it is the one being changed.
    private func writeSettings(_ change: EndpointSettings.Change, of endpoint: inout Endpoint) throws {
        let id = endpoint.id
        func set(_ columns: String, _ values: [SQLValue]) throws {
            try database.prepare("UPDATE webhook_endpoints SET \(columns) WHERE id = ?").run(values + [.text(id)])
        }
        if change.changesHeaders {
            endpoint.settings = try change.applied(to: endpoint.settings)
            try set("custom_headers = ?", [endpoint.settings.customHeaders.stored.map { .text($0) } ?? .null])
        }
        if let certificate = change.clientCertificate {
            endpoint.settings.clientCertificate = certificate
            endpoint.settings.clientCertificateUnreadable = false
            try set("client_cert = ?, client_key = ?", [.optional(certificate?.certificate), .optional(certificate?.key)])
        }
        if let rateLimit = change.rateLimit {
            endpoint.settings.rateLimit = rateLimit
            endpoint.settings.rateLimitUnreadable = false
            try set("rate_limit = ?", [.optional(rateLimit?.stored)])
        }
        if let orderBy = change.orderBy {
            endpoint.settings.orderBy = orderBy
            try set("order_by = ?", [.optional(orderBy?.description)])
        }
        if let hold = change.holdOnDead {
            endpoint.settings.holdOnDead = hold
            try set("order_on_dead = ?", [hold ? .text("hold") : .null])
        }
        if let filter = change.filter {
            endpoint.settings.filter = filter
            try set("event_filter = ?", [.optional(filter)])
        }
        if let schedule = change.retrySchedule {
            endpoint.settings.retrySchedule = schedule
            try set("retry_schedule = ?", [schedule.stored.map { .text($0) } ?? .null])
        }
        if let percent = change.retryJitterPercent {
            endpoint.settings.retryJitterPercent = percent
            try set("retry_jitter = ?", [percent == 0 ? .null : .integer(Int64(percent))])
        }
    }

    /// The settings' columns as stored, `retry_schedule` to `event_filter`: NULL for the
    /// defaults, as in Keysat's rows.
    static func settingsValues(_ settings: EndpointSettings) -> [SQLValue] {
        [
            settings.retrySchedule.stored.map { .text($0) } ?? .null,
            settings.retryJitterPercent == 0 ? .null : .integer(Int64(settings.retryJitterPercent)),
            settings.customHeaders.stored.map { .text($0) } ?? .null,
            settings.clientCertificate.map { .text($0.certificate) } ?? .null,
            settings.clientCertificate.map { .text($0.key) } ?? .null,
            settings.rateLimit.map { .text($0.stored) } ?? .null,
            .optional(settings.filter),
        ]
    }
}

extension WebhookStore {
    /// Erases for real what secure_delete zeroed: the WAL still holds the old page images (the
    /// old secret in them) and the database file the old pages, until a checkpoint copies the
    /// new pages over and truncates the WAL. Other connections that are merely open do not stop
    /// it; one inside a read transaction does, and then the old content is gone once that
    /// connection's transaction ends and a later checkpoint runs (at the end of a keysat-deliver
    /// run that sent anything, or at the last connection's close).
    ///
    /// - Returns: whether the checkpoint completed (`false`: a reader holds an older snapshot).
    @discardableResult
    public func checkpointErasing() throws -> Bool {
        let busy = try database.prepare("PRAGMA wal_checkpoint(TRUNCATE)").first { $0.integer(0) ?? 1 } ?? 1
        return busy == 0
    }

    /// Makes `secret` the endpoint's current secret and keeps the old one signing until
    /// `graceSeconds` from now (0: the old one stops at once and is erased).
    /// - Returns: the endpoint with its new secret.
    public func rotateSecret(id: String, to secret: String, signingKey: String?, graceSeconds: Int64) throws
        -> Endpoint
    {
        try database.writeTransaction {
            var endpoint = try endpoint(id: id)
            let now = clock.now()
            let previous: SQLValue = graceSeconds > 0 ? .text(endpoint.secret) : .null
            let expires: SQLValue =
                graceSeconds > 0 ? .text(now.adding(seconds: graceSeconds).rfc3339) : .null
            // The old signing key signs through the same grace as the old secret.
            let previousKey: SQLValue = graceSeconds > 0 && signingKey != nil ? .optional(endpoint.signingKey) : .null
            try database.prepare(
                """
                UPDATE webhook_endpoints SET secret = ?, previous_secret = ?, previous_secret_expires_at = ?,
                    signing_key = coalesce(?, signing_key), previous_signing_key = ?, updated_at = ? WHERE id = ?
                """
            ).run([.text(secret), previous, expires, .optional(signingKey), previousKey, .text(now.rfc3339), .text(id)])
            endpoint.secret = secret
            if let signingKey { endpoint.signingKey = signingKey }
            endpoint.updatedAt = now.rfc3339
            return endpoint
        }
    }

    public func updateSigning(id: String, _ change: EndpointSigning.Change) throws -> Endpoint {
        try database.writeTransaction {
            var endpoint = try endpoint(id: id)
            guard !change.isEmpty else { return endpoint }
            switch change.signingKey {
            case .set(let key):
                endpoint.signingKey = key
                try database.prepare(
                    "UPDATE webhook_endpoints SET signing_key = ?, previous_signing_key = NULL WHERE id = ?"
                ).run([.text(key), .text(id)])
            case .remove:
                endpoint.signingKey = nil
                try database.prepare(
                    "UPDATE webhook_endpoints SET signing_key = NULL, previous_signing_key = NULL WHERE id = ?"
                ).run([.text(id)])
            case nil: break
            }
            if let on = change.keysatSignature {
                endpoint.keysatSignature = on
                try database.prepare("UPDATE webhook_endpoints SET keysat_signature = ? WHERE id = ?").run([
                    on ? .null : .integer(0), .text(id),
                ])
            }
            endpoint.updatedAt = clock.now().rfc3339
            try database.prepare("UPDATE webhook_endpoints SET updated_at = ? WHERE id = ?").run([
                .text(endpoint.updatedAt), .text(id),
            ])
            return endpoint
        }
    }

    /// When the endpoint's previous secret stops signing, if it still does.
    public func previousSecretExpiry(id: String) throws -> String? {
        try database.prepare(
            "SELECT previous_secret_expires_at FROM webhook_endpoints WHERE id = ? AND previous_secret IS NOT NULL"
        ).first([.text(id)]) { $0.text(0) } ?? nil
    }
}

extension WebhookStore {
    /// Disables an endpoint on keysat-deliver's own decision, recording why and when, and
    /// announces it (`webhook.endpoint.disabled`) in the same transaction. With
    /// `failingSince` (disabled for its failing streak, begun then) later runs probe it
    /// (`takeProbes`), the first time `--probe-every` after now; without (410 Gone), never.
    /// Returns `false` if it was already disabled.
    @discardableResult
    public func disableEndpoint(id: String, reason: String, failingSince: Timestamp?) throws -> Bool {
        try database.writeTransaction {
            let now = clock.now().rfc3339
            try database.prepare(
                """
                UPDATE webhook_endpoints SET active = 0, disabled_reason = ?, disabled_at = ?, updated_at = ?
                WHERE id = ? AND \(Self.isActive(""))
                """
            ).run([.text(reason), .text(now), .text(now), .text(id)])
            guard database.changes == 1 else { return false }
            try database.prepare(
                """
                INSERT INTO keysat_webhooks_endpoint_health (endpoint_id, disabled_failing_since, probed_at)
                VALUES (?1, ?2, CASE WHEN ?2 IS NOT NULL THEN ?3 END)
                ON CONFLICT (endpoint_id) DO UPDATE SET
                    disabled_failing_since = excluded.disabled_failing_since, probed_at = excluded.probed_at
                """
            ).run([.text(id), .optional(failingSince?.rfc3339), .text(now)])
            announcing(OperationalEvent.endpointDisabled) {
                var generator = SystemRandomNumberGenerator()
                _ = try writeEvent(
                    eventType: OperationalEvent.endpointDisabled,
                    data: OperationalEvent.disabledData(endpointID: id, reason: reason), at: clock.now(),
                    excluding: id, using: &generator)
            }
            return true
        }
    }

    /// When the endpoint's current run of failed attempts began: the first attempt after its
    /// last successful one (or after an operator last enabled it, `streak_reset_at`), if every
    /// attempt since has failed; `nil` when its last attempt succeeded or it has none.
    public func failingSince(endpointID: String) throws -> Timestamp? {
        let text =
            try database.prepare(
                """
                SELECT min(a.started_at) FROM webhook_deliveries d JOIN webhook_delivery_attempts a
                    ON \(AttemptHistory.of("d", "a"))
                WHERE d.endpoint_id = ?1 AND a.started_at > coalesce(
                    (SELECT max(a2.started_at) FROM webhook_deliveries d2 JOIN webhook_delivery_attempts a2
                     ON \(AttemptHistory.of("d2", "a2"))
                     WHERE d2.endpoint_id = ?1 AND a2.status_code BETWEEN 200 AND 299), '')
                  AND a.started_at > coalesce(
                    (SELECT streak_reset_at FROM keysat_webhooks_endpoint_health WHERE endpoint_id = ?1), '')
                """
            ).first([.text(endpointID)]) { $0.text(0) } ?? nil
        return text.flatMap { Timestamp(rfc3339: $0) }
    }

    /// A warning when users outside the database's owner and group can read or write it (it
    /// holds endpoint secrets): the file, its WAL and shared-memory files, or a folder that lets
    /// them replace it. Group access is the documented way to share it (docs/DESIGN.md), and is
    /// not warned about.
    public func permissionWarning() -> String? {
        let path = database.path
        for file in [path, path + "-wal", path + "-shm"] {
            var info = stat()
            guard lstat(file, &info) == 0 else { continue }
            let mode = info.st_mode & 0o7777
            guard mode & 0o006 != 0 else { continue }
            return
                "\(file) can be read or written by users outside its owner and group (mode 0\(String(mode, radix: 8))); "
                + "it holds endpoint secrets: chmod o-rwx \(file)"
        }
        let folder = FilePath.folder(of: path)
        var info = stat()
        if stat(folder, &info) == 0, info.st_mode & 0o002 != 0, info.st_mode & 0o1000 == 0 {
            return
                "folder \(folder) can be written by every user (mode 0\(String(info.st_mode & 0o7777, radix: 8))), "
                + "who could replace the database: chmod o-w \(folder)"
        }
        return nil
    }
}
