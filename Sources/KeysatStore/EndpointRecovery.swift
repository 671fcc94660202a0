import KeysatCore

/// What both backends' SQL says about the recovery of an endpoint that was disabled (issue 22):
/// which dead deliveries come back when it is enabled again, by a probe or by hand.
public enum EndpointRecovery {
    /// `last_error` of a delivery dead-lettered without a request because its endpoint was
    /// deleted or disabled: Keysat's rule, kept so that Keysat's own tools read such rows as
    /// they always did.
    public static let disabledError = "endpoint deleted or disabled"

    /// Whether `outcome` is Keysat's rule for a delivery whose endpoint was found disabled or
    /// deleted: written only where the endpoint is still not active when it is committed, so
    /// that a recovery (or an operator's `endpoint enable --requeue`) committed meanwhile,
    /// which re-queued the outage's dead letters, does not see this one dead-lettered after it.
    public static func needsEndpointStillInactive(_ outcome: AttemptOutcome) -> Bool {
        !outcome.requested && outcome.error == disabledError && outcome.fingerprint == nil
    }

    /// SQL true for a dead delivery `d` of endpoint `endpoint` that a recovery re-queues: every
    /// one dead-lettered because the endpoint was disabled (never tried then, so never a
    /// duplicate, whatever its age), and, when `since` (the start of the outage: the failing
    /// streak that disabled it, or when it was disabled) is not NULL, every one created or
    /// attempted since then, dead-lettered by the outage's failures. `attemptedSince` is the
    /// backend's SQL for "`d` has an attempt started at or after `since`" (the attempt history
    /// is found differently on each). An erased delivery never comes back: its payload is gone.
    public static func requeued(_ d: String, endpoint: String, since: String, attemptedSince: String) -> String {
        """
        \(d).endpoint_id = \(endpoint) AND \(DeliveryRecord.State.dead.condition(d))
          AND NOT \(PayloadErasure.condition(d))
          AND (\(d).last_error = '\(disabledError)'
               OR (\(since) IS NOT NULL AND (\(d).created_at >= \(since) OR \(attemptedSince))))
        """
    }
}
