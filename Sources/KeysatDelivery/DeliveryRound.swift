import KeysatCore
import KeysatStore

#if canImport(Glibc)
    import Glibc
#endif

/// The loop of one run at `t0`: fills the free slots from the due buffer (ordered endpoints
/// from their chains), hands each finished attempt to the outcome policy and carries out its
/// decision, and commits the outcomes in batches. Used once.
final class DeliveryRound {
    private let store: any DeliveryStore
    private let options: DeliveryOptions
    private let clock: any TimeSource
    private let logger: Logger
    private let stop: () -> Bool
    private let transport: any Transport
    private let t0: Timestamp
    private let due: DueBuffer
    private let policy: OutcomePolicy
    private lazy var signingKeys = SigningKeys(logger: logger)
    private let limit: Int
    /// When to stop starting attempts, on the monotonic clock (`TimeSource.elapsed`).
    private let deadline: Int64?
    /// When the round began, on the monotonic clock.
    private let began: Int64
    /// How long a claim on a delivery lasts (`DeliveryStore.claim`): its whole attempt, the
    /// commit of its outcome, and a margin for a slow host. A run killed mid-attempt leaves
    /// its claims to expire; then any run takes those deliveries again.
    /// With claims in the background, every claim of the run is leased one timeout longer: a
    /// claim ahead may wait that long for a slot (and the run's one count of attempts in flight
    /// per endpoint expires with the latest claim).
    private var leaseSeconds: Double {
        options.timeoutSeconds + Double(options.commitIntervalMS) / 1000 + 60 + (claims == nil ? 0 : options.timeoutSeconds)
    }

    private var summary = RunSummary()
    private var endpoints: EndpointStates
    private var chains = OrderedChains()
    /// Ordering keys' chains (issue 23), and the deliveries of keys whose attempt finished and
    /// whose next head is to be asked for once their outcomes are committed (one commit for all
    /// that finished in a turn of the loop).
    private var keys = KeyChains()
    private var keysToContinue: [DueDelivery] = []
    /// Requests in flight by tag, with payloads dropped (the transport holds the bodies).
    private var inFlight: [Int: DueDelivery] = [:]
    /// Payload bytes of the requests in flight: with the deferred payloads (DueDelivery), what
    /// bounds the run's memory whatever the backlog and the payloads' size.
    private var inFlightBytes = 0
    private var nextTag = 0
    /// Outcomes not yet committed, and when the last commit was (monotonic clock).
    private var outcomes: [AttemptOutcome] = []
    private var lastFlush: Int64
    private var refusalsWarned: Set<String> = []
    private var settingsWarned: Set<String> = []
    /// Endpoints whose client certificate files this run checked, and what was wrong.
    private var certificateChecks: [String: String?] = [:]
    /// Stored settings this run judged (`judgedOnce`: signing keys, filters, by what, endpoint
    /// and value), and whether they can be used.
    private var storedChecks: [String: Bool] = [:]
    /// Requests started in this round.
    private var requestsStarted = 0
    /// The errno with which this host ran out of descriptors or memory while sending, and how
    /// many deliveries it kept from going out (they stay due, unrecorded).
    private var exhaustion: (errno: Int32, kept: Int)?
    /// Why the store could not give the run its next delivery (a claim or a payload read that
    /// failed: a lost connection, a lock held too long): the run starts nothing more, lets its
    /// requests in flight end and records them, then reports this.
    private var readFailure: (any Error)?
    /// Endpoints disabled for failing that this round probes (`startProbes`), and the tags of
    /// the probes in flight.
    private var probing: Set<String> = []
    private var probeTags: Set<Int> = []
    /// Claims answered on a thread of their own (a store whose claims cost a round trip), and
    /// the rows of the one outstanding: no other claim begins until it is answered.
    private let claims: BackgroundClaims?
    private var claiming: [DueDelivery] = []
    /// Rows those claims took, waiting for a slot, oldest first from `readyHead`, with when
    /// they were taken (monotonic clock): the claims run ahead of the transfers, so that a
    /// freed slot does not wait for a round trip.
    private var ready: [(row: DueDelivery, since: Int64)] = []
    private var readyHead = 0
    private var readyCount: Int { ready.count - readyHead }

    init(
        store: any DeliveryStore, options: DeliveryOptions, clock: any TimeSource, logger: Logger,
        stop: @escaping () -> Bool, transport: any Transport, t0: Timestamp, claims: BackgroundClaims? = nil
    ) {
        self.store = store
        self.claims = claims
        self.options = options
        self.clock = clock
        self.logger = logger
        self.stop = stop
        self.transport = transport
        self.t0 = t0
        due = DueBuffer(store: store, t0: t0, pageSize: options.pageSize, bufferLimit: options.bufferLimit)
        policy = OutcomePolicy(breaker: options.breaker)
        endpoints = EndpointStates(perEndpoint: options.perEndpoint)
        limit = options.limit ?? Int.max
        let began = clock.elapsed()
        self.began = began
        deadline = options.maxRuntimeSeconds.map { began + Int64($0 * 1_000_000) }
        lastFlush = began
    }

    func run() throws -> RunSummary {
        // However the round ends, no claim is left to answer after it (its wake-up would go to
        // a transport that is gone); what it took and did not start is handed back.
        defer { abandonClaim() }
        do {
            return try loop()
        } catch let failure as RecordingFailure {
            // Sent (or being sent) and not recorded: the next run sends them again. Said, so
            // that an operator knows why receivers see duplicates, and how many.
            let lost = outcomes.lazy.filter(\.requested).count + store.unrecordedRequests()
            throw failure.report(sentNotRecorded: lost, inFlight: inFlight.count, anySent: requestsStarted > 0)
        }
    }

    private func loop() throws -> RunSummary {
        // Rows whose next attempt is not a time at all are never on a due page: dead-lettered
        // here, so that none stays pending for ever unseen (or blocks an ordered endpoint).
        for row in try store.unschedulable(limit: 1000) { deadLetterDefective(row) }
        if options.probeEverySeconds > 0 { try startProbes() }
        while true {
            checkSignals()  // also while every slot is busy
            // Waited for only when nothing is in flight: else the transfers go on meanwhile.
            try takeClaimAnswer(wait: transport.inFlight == 0)
            if endpoints.nextToken != nil { try resumeAfterTokens() }
            try startWhatFits()
            if transport.inFlight == 0 && claiming.isEmpty && readyCount == 0
                && (due.isEmpty && due.exhausted && endpoints.nextToken == nil || summary.stoppedBy != nil || exhaustion != nil || readFailure != nil)
            {
                break
            }
            for result in try transport.poll(timeoutMS: pollTimeoutMS()) {  // at once while nothing is in flight
                try finished(result)
            }
            try continueKeys()
            skipBrokenAndChained()
            try flushIfDue()
        }
        try flush()
        try recording { try store.drain() }  // the run's outcomes are all on disk before it reports them
        if let readFailure { throw readFailure }
        if let exhaustion {
            throw KeysatError.system(
                .system,
                "cannot open a connection (\(exhaustion.kept) deliver\(exhaustion.kept == 1 ? "y" : "ies") not sent, still due; what was sent is recorded)",
                errno: exhaustion.errno)
        }
        if options.disableAfterSeconds > 0 { try disableFailingEndpoints() }
        summary.elapsedMS = Int((clock.elapsed() - began) / 1000)
        return summary
    }

    // MARK: - Starting attempts

    /// Starts attempts while a slot, the byte budget and the limits allow, in turn per endpoint.
    private func startWhatFits() throws {
        try due.fill()
        try startReady()
        // A store whose claims cost a round trip (PostgreSQL) is asked once a few slots are
        // free, not as each one frees: a claim per finished attempt cost as much as the attempt.
        // With claims in the background, the slots are those of the claims waiting to start.
        let gather = store.claimBatch > 1 ? min(4, max(1, options.concurrency / 4)) : 1
        if occupied > 0 && slots - occupied < gather { return }
        while claiming.isEmpty, occupied < slots,
            transport.inFlight == 0 || inFlightBytes < options.inFlightByteBudget, mayStart(),
            summary.attempted + readyCount < limit,
            let delivery = due.next(where: { self.endpoints.hasRoom($0) && !self.chains.contains($0) })
        {
            // Chains (ordered endpoints, ordering keys) and rate limits are claimed on this
            // thread, only as they can start (`start`): with the slots full, next turn.
            let ahead = claims != nil && !delivery.ordered && delivery.orderingKey == nil
                && delivery.settings.rateLimit == nil
            if !ahead && transport.inFlight >= options.concurrency {
                due.putBack([delivery])
                break
            }
            if delivery.ordered {
                _ = due.drop(delivery.endpointID)
                chains.begin(delivery.endpointID)
                try continueChain(delivery.endpointID)
            } else if delivery.orderingKey != nil {
                // Its key's chain sends the key's head, not this row; a key begun already serves it.
                if keys.begin(delivery) { try continueKey(delivery) }
            } else {
                try start(
                    [delivery] + due.take(delivery.endpointID, upTo: claimable(delivery.endpointID, ahead: ahead) - 1))
            }
            try due.fill()
        }
    }

    /// Asks about signals once per turn of the loop (a system call), not once per attempt.
    private func checkSignals() {
        if summary.stoppedBy == nil && stop() { summary.stoppedBy = .signal }
    }

    /// Whether a new attempt may start at all.
    private func mayStart() -> Bool {
        if summary.stoppedBy != nil || exhaustion != nil || readFailure != nil { return false }
        if let deadline, clock.elapsed() >= deadline {
            summary.stoppedBy = .maxRuntime
        } else if summary.attempted >= limit {
            summary.stoppedBy = .limit
        }
        return summary.stoppedBy == nil
    }

    /// What the run's slots hold: its requests in flight, or, with claims in the background,
    /// the claims waiting for a slot (at most `concurrency` of them run ahead of the requests).
    private var occupied: Int { claims == nil ? transport.inFlight : readyCount }

    /// How many `occupied` may reach: the concurrency, for the requests or for the claims
    /// waiting to start (each of which holds a slot of its endpoint's cap across all runs).
    private var slots: Int { options.concurrency }

    /// How many of `endpoint`'s deliveries to claim at once: as many as may start now (free
    /// slots, the endpoint's room, the run's limit), up to what the store claims in one call.
    /// `ahead`: for the claims waiting for a slot (else for the free slots).
    private func claimable(_ endpoint: String, ahead: Bool) -> Int {
        let limitLeft = limit == Int.max ? Int.max : max(1, limit - summary.attempted - readyCount)
        let room = ahead ? slots - occupied : options.concurrency - transport.inFlight
        return max(1, min(store.claimBatch, room, endpoints.room(endpoint), limitLeft))
    }

    /// Starts attempts for `rows` (of one endpoint), or records at once why there can be none.
    private func start(_ rows: [DueDelivery]) throws {
        let sendable = sortOut(rows)
        guard let first = sendable.first else { return }
        // No request the run could not record: proved before the first, and a failed commit
        // (on the recorder's thread) stops the next one.
        try recording {
            if requestsStarted == 0 { try store.prepareToRecord() }
            try store.checkRecording()
        }
        // Taken for this run (a store shared by runs on several hosts): not when another run
        // has it, the endpoint is at its cap across runs, or an ordered endpoint's older
        // delivery is pending. In the background where claims cost a round trip, but for the
        // chains (ordered endpoints, ordering keys), whose next step depends on the answer, and
        // for rate limits, whose tokens are taken by the claim: claimed only as they can start,
        // so that no request goes later than its token (and several together).
        if let claims, !first.ordered, first.orderingKey == nil, first.settings.rateLimit == nil {
            do {
                try claims.begin(
                    sendable, perEndpoint: options.perEndpoint, inFlight: endpoints[first.endpointID].held,
                        leaseSeconds: leaseSeconds, wake: transport.wakeHandle())
                claiming = sendable
            } catch {
                readFailure = error
            }
            return
        }
        try takeClaimAnswer(wait: true)
        let answers: [Claim]
        do {
            answers = try store.claim(
                sendable, perEndpoint: first.ordered ? 1 : options.perEndpoint,
                inFlight: endpoints[first.endpointID].held, leaseSeconds: leaseSeconds)
        } catch {
            readFailure = error
            return
        }
        try carryOut(answers, for: sendable, accept: send)
    }

    /// The rows that may be sent now; the others are dead-lettered (a defect, Keysat's rule for
    /// a disabled or deleted endpoint) or left due with their endpoint skipped for the round.
    private func sortOut(_ rows: [DueDelivery]) -> [DueDelivery] {
        var sendable: [DueDelivery] = []
        for row in rows {
            if let problem = row.settingsProblem { warnSettings(row.endpointID, problem) }
            if row.defect == nil, !row.endpointActive, probing.contains(row.endpointID) {
                // Its probe may enable it again in this round: left due rather than
                // dead-lettered after the recovery re-queued what the outage dead-lettered.
                summary.count(row.endpointID) { $0.skipped += 1 + due.drop(row.endpointID) }
                continue
            }
            if row.defect != nil {
                deadLetterDefective(row)
            } else if row.endpointActive && !endpoints[row.endpointID].disabled, row.url != nil, row.secret != nil {
                if row.settings.mayNotSend || !certificateReady(row) || !signingKeysReady(row) || !filterReady(row) {
                    // Never sent without what the operator configured (headers, client
                    // certificate, signing key), nor with a part of it: left due, the endpoint
                    // skipped for the round, said once.
                    summary.count(row.endpointID) { $0.skipped += 1 + due.drop(row.endpointID) }
                    continue
                }
                sendable.append(row)
            } else {
                summary.count(row.endpointID) { $0.attempted += 1 }
                record(policy.unsendable(row, at: clock.now()), row)
            }
        }
        return sendable
    }

    /// Takes the answer of the claim begun in the background, if it is there (or, with `wait`,
    /// once it is), and carries it out: what it claimed waits for a slot (`startReady`).
    private func takeClaimAnswer(wait: Bool, start: Bool = true) throws {
        guard let claims, let answer = claims.answer(wait: wait) else { return }
        let rows = claiming
        claiming = []
        let answers: [Claim]
        switch answer {
        case .failure(let error):
            readFailure = error
            return
        case .success(let given): answers = given
        }
        try carryOut(answers, for: rows) { row in
            ready.append((row, clock.elapsed()))
            endpoints.waiting(row.endpointID, 1)
        }
        if start { try startReady() }
    }

    /// Starts the claimed rows waiting for a slot, oldest first, while slots and the byte budget
    /// allow. A disabled endpoint's are dead-lettered without a request, as the rows of one are
    /// when read (Keysat's rule). Those that may not start are handed back
    /// (`DeliveryStore.release`), due again at once: all of them once the run stops starting, an
    /// endpoint's once its breaker opened. Rows of an endpoint down to one attempt at a time
    /// (transport failures) and any that waited longer than a request's timeout (the lease of a
    /// claim ahead covers one wait of that long and one attempt) go back to the due buffer too.
    private func startReady() throws {
        guard readyHead < ready.count else { return }  // every turn of the loop, on SQLite too
        var handBack: [DueDelivery] = []
        var retake: [DueDelivery] = []
        // Also when a request fails to start part-way: what was set aside goes back.
        defer { handOver(handBack, retake: retake) }
        let oldest = clock.elapsed() - Int64(options.timeoutSeconds * 1_000_000)
        while readyHead < ready.count {
            let (row, since) = ready[readyHead]
            let state = endpoints[row.endpointID]
            let mayNot = !mayStart() || state.breakerOpen
            let oneAtATime = state.transportFailures > 0 && state.inFlight > 0 || since < oldest
            if !mayNot && !oneAtATime && !state.disabled {
                guard transport.inFlight < options.concurrency,
                    transport.inFlight == 0 || inFlightBytes < options.inFlightByteBudget
                else { break }
            }
            readyHead += 1
            endpoints.waiting(row.endpointID, -1)
            if state.disabled {
                summary.count(row.endpointID) { $0.attempted += 1 }
                record(policy.unsendable(row, at: clock.now()), row)
            } else if mayNot {
                if state.breakerOpen { summary.count(row.endpointID) { $0.skipped += 1 } }
                handBack.append(row)
            } else if oneAtATime {
                handBack.append(row)
                retake.append(row)
            } else {
                try send(row)
            }
        }
        // Rows taken are let go of (their payloads with them), however long the queue runs.
        if readyHead == ready.count {
            ready.removeAll(keepingCapacity: true)
            readyHead = 0
        } else if readyHead >= 64 && readyHead * 2 >= ready.count {
            ready.removeFirst(readyHead)
            readyHead = 0
        }
    }

    /// Hands `rows` back to the store (due again at once); those in `retake` go back to the
    /// due buffer too, to be claimed again in this round.
    private func handOver(_ rows: [DueDelivery], retake: [DueDelivery]) {
        guard !rows.isEmpty else { return }
        do {
            try store.release(rows)
            due.putBack(retake)
        } catch {
            readFailure = readFailure ?? error  // left to their leases: due again once they end
        }
    }

    /// Ends the round's claim in the background, if one is outstanding, without starting what
    /// it took: handed back, or left to its leases if that fails.
    private func abandonClaim() {
        var handBack = ready[readyHead...].map(\.row)
        ready = []
        readyHead = 0
        if let claims, case .success(let answers)? = claims.answer(wait: true) {
            handBack += answers.compactMap { if case .claimed(let row) = $0 { row } else { nil } }
        }
        claiming = []
        if !handBack.isEmpty { try? store.release(handBack) }
    }

    /// Sends what the claim gave this run, and waits or steps aside for the rest.
    private func carryOut(_ answers: [Claim], for sendable: [DueDelivery], accept: (DueDelivery) throws -> Void)
        throws
    {
        guard let first = sendable.first else { return }
        let endpoint = first.endpointID
        var busy: [DueDelivery] = []
        var limited: [DueDelivery] = []
        var nextToken = 0.0
        for (row, answer) in zip(sendable, answers) {
            switch answer {
            case .claimed(let delivery): try accept(delivery)
            case .taken: continue
            case .endpointBusy: busy.append(row)
            case .rateLimited(let seconds):
                limited.append(row)
                nextToken = seconds
            }
        }
        if first.orderingKey != nil && !first.ordered && !(busy.isEmpty && limited.isEmpty) {
            // Not started: the key begins again, from its head, when its row is served again.
            keys.release(first)
        }
        if !limited.isEmpty { waitForTokens(limited, seconds: nextToken) }
        guard !busy.isEmpty, !first.ordered else { return }
        if endpoints[endpoint].held > 0 {
            // Other runs have the rest of its slots and this run some: wait for one of its own.
            due.putBack(busy)
            endpoints.markFull(endpoint)
        } else {
            // Other runs have all of it: they serve it; this run leaves it for the round.
            _ = due.drop(endpoint)
        }
    }

    // MARK: - Rate limits

    /// `rows` (of one endpoint) found no token in its bucket (`Claim.rateLimited`); the next
    /// comes in `seconds`. Soon enough (`RateLimit.longestWaitSeconds`, and before
    /// `--max-runtime` ends), the endpoint waits for it while the run serves the others; later,
    /// its deliveries are left, still due, to a later run (said once), rather than the run
    /// sleeping for them.
    private func waitForTokens(_ rows: [DueDelivery], seconds: Double) {
        let endpoint = rows[0].endpointID
        let until = clock.elapsed() + Int64(max(0, seconds) * 1_000_000)
        if seconds <= RateLimit.longestWaitSeconds, deadline.map({ until < $0 }) ?? true {
            endpoints.waitForTokens(endpoint, until: until)
            if rows[0].ordered {
                chains.retake(rows[0].rowID)  // the chain goes on with it once the token comes
            } else {
                due.putBack(rows)
            }
            return
        }
        endpoints.deferForRate(endpoint)
        let left = rows.count + (rows[0].ordered ? 0 : due.drop(endpoint))
        summary.count(endpoint) { $0.rateLimited += left }
        logger.log(
            .info, "endpoint rate limit reached; its deliveries wait for a later run",
            [
                "endpoint_id": endpoint, "rate": rows[0].settings.rateLimit?.description ?? "-",
                "next_token_in_ms": String(Int((seconds * 1000).rounded(.up))),
            ])
    }

    /// Ends the waits for tokens that came; an ordered endpoint's chain goes on.
    private func resumeAfterTokens() throws {
        for endpoint in endpoints.tokensCame(by: clock.elapsed()) where chains.contains(endpoint) {
            try continueChain(endpoint)
        }
    }

    /// How long a turn of the loop waits for requests to finish: 100 ms, less when an endpoint's
    /// next token comes sooner. While nothing is in flight and an endpoint waits for a token,
    /// the run has nothing else to do: it sleeps until the token comes (100 ms at most, to see
    /// signals).
    private func pollTimeoutMS() -> Int {
        guard let next = endpoints.nextToken else { return 100 }
        let wait = Int(max(0, min(100_000, next - clock.elapsed())))
        if transport.inFlight == 0 && claiming.isEmpty && wait > 0 { usleep(UInt32(wait)) }
        return (wait + 999) / 1000
    }

    /// Starts the request of a claimed delivery. A row deleted meanwhile (purged, or its
    /// endpoint removed) is neither sent nor counted.
    private func send(_ claimed: DueDelivery) throws {
        guard readFailure == nil else { return }
        let loaded: DueDelivery?
        do {
            loaded = try withPayload(claimed)
        } catch {
            readFailure = error
            return
        }
        guard var delivery = loaded, let url = delivery.url, let secret = delivery.secret else { return }
        // Erased since it was read (`deliveries erase`): never sent, as if the row were gone;
        // the erasure dead-lettered it and moved its attempt count, so no outcome is owed.
        if PayloadErasure.isErased(delivery.payload) { return }
        let endpoint = delivery.endpointID
        summary.count(endpoint) { $0.attempted += 1 }
        requestsStarted += 1
        nextTag += 1
        inFlightBytes += delivery.payload.count
        endpoints.started(endpoint)
        try transport.start(
            HTTPRequest(
                url: url,
                headers: RequestHeaders.make(
                    for: delivery, secret: secret, timestamp: clock.now(), keys: signingKeys),
                body: delivery.payload, tag: nextTag, clientCertificate: delivery.settings.clientCertificate))
        delivery.payload = []  // the transport holds the body; the run needs only the row's identity
        inFlight[nextTag] = delivery
    }

    /// `delivery` with its payload, read now if it was deferred (`DueDelivery.payloadDeferred`);
    /// `nil` when the row is gone.
    private func withPayload(_ delivery: DueDelivery) throws -> DueDelivery? {
        guard delivery.payloadDeferred else { return delivery }
        guard let payload = try store.payload(of: delivery) else { return nil }
        var loaded = delivery
        loaded.payload = payload
        loaded.payloadDeferred = false
        return loaded
    }

    /// Continues an ordered endpoint's chain after one of its deliveries finished or was dropped.
    private func continueChain(_ endpoint: String) throws {
        // An outstanding claim's answer first (its rows count in the endpoint's room), without
        // starting them: the slot that freed is the chain's.
        try takeClaimAnswer(wait: true, start: false)
        while mayStart(), transport.inFlight < options.concurrency {
            try flush()  // the chain's next row is read from the store, which must have the last outcome
            try recording { try store.drain() }  // a failed commit is the run's to report, counted
            guard let next = chains.next(try store.oldestPending(endpointID: endpoint), dueBy: t0) else {
                return
            }
            try start([next])
            if inFlight.values.contains(where: { $0.endpointID == endpoint }) { return }
            // Waiting for a rate token, or left for a later run: the chain resumes with the
            // token (`resumeAfterTokens`), not by asking again at once (a busy loop that
            // would keep the transfers of other endpoints from being driven).
            if !endpoints.hasRoom(endpoint) { return }
            if !next.endpointActive && probing.contains(endpoint) { return }  // left due (`start`)
            // Recorded at once (disabled endpoint): go on with the next one.
        }
    }

    // MARK: - Ordering keys

    /// Goes on with the keys whose attempts finished in this turn: their outcomes committed
    /// first (once for all), since the store's head of a key is read, and on PostgreSQL its
    /// claim judged, from what is committed.
    private func continueKeys() throws {
        guard !keysToContinue.isEmpty else { return }
        try flush()
        try recording { try store.drain() }
        let finished = keysToContinue
        keysToContinue.removeAll(keepingCapacity: true)
        for row in finished { try continueKey(row, committed: true) }
    }

    /// Starts the head of `row`'s key (begun by this run) if it is due, now or, without a free
    /// slot or room at its endpoint, when the key's row put back in the due buffer is served
    /// again. A head recorded at once (a defect, a disabled endpoint) is followed by the next.
    private func continueKey(_ row: DueDelivery, committed: Bool = false) throws {
        try takeClaimAnswer(wait: true, start: false)
        var committed = committed
        while mayStart() {
            guard transport.inFlight < options.concurrency, endpoints.hasRoom(row.endpointID),
                transport.inFlight == 0 || inFlightBytes < options.inFlightByteBudget
            else {
                keys.release(row)
                due.putBack([row])
                return
            }
            if !committed {
                try flush()  // the head is read from the store, which must have the last outcome
                try recording { try store.drain() }
            }
            committed = false
            let found = try store.keyHead(
                endpointID: row.endpointID, key: row.orderingKey ?? "", hold: row.settings.holdOnDead)
            guard let head = keys.next(found, dueBy: t0) else { return }
            try start([head])
            // Only a head recorded at once (dead-lettered without a request) is followed by the
            // next; one in flight, held by another run, released (no room, no token) or left
            // due ends the turn.
            guard outcomes.last?.deliveryID == head.id, !head.settings.holdOnDead else { return }
        }
    }

    // MARK: - Finished attempts

    /// Carries out the policy's decision about a finished attempt.
    private func finished(_ result: HTTPResult) throws {
        guard let delivery = inFlight.removeValue(forKey: result.tag) else { return }
        inFlightBytes -= result.requestBytes
        let endpoint = delivery.endpointID
        if case .exhausted(let code) = result.failure {
            // Never left this host: nothing to record, no verdict on the receiver; no new request.
            endpoints.released(endpoint)
            exhaustion = (exhaustion?.errno ?? code, (exhaustion?.kept ?? 0) + 1)
            return
        }
        if let address = result.refusedAddress { warnRefused(delivery, address: address) }
        if probeTags.remove(result.tag) != nil { return try probed(delivery, result) }
        let decision = policy.decide(
            result, for: delivery, transportFailures: endpoints[endpoint].transportFailures)
        if let reason = decision.disableReason, !endpoints[endpoint].disabled {
            try disable(endpoint, reason: reason)
        }
        if endpoints.finished(endpoint, decision) {
            let skipped = due.drop(endpoint)
            summary.count(endpoint) { $0.skipped += skipped }
            logger.log(
                .info, "circuit breaker opened",
                ["endpoint_id": endpoint, "failures": String(options.breaker), "skipped": String(skipped)])
        }
        record(decision.outcome, delivery)
        if delivery.ordered && OrderedChains.continues(after: decision.outcome.result) {
            try continueChain(endpoint)
        } else if !delivery.ordered, delivery.orderingKey != nil,
            KeyChains.continues(after: decision.outcome.result, hold: delivery.settings.holdOnDead)
        {
            keysToContinue.append(delivery)
        }
    }

    /// A row that cannot be sent as it stands (`DueDelivery.defect`) is dead-lettered without a
    /// request, and said once, by rowid (its id may be NULL), with how to repair it: no
    /// receiver gets a webhook that could not be recorded or de-duplicated.
    private func deadLetterDefective(_ row: DueDelivery) {
        guard let defect = row.defect, let fingerprint = row.fingerprint else { return }
        let now = clock.now()
        var outcome = AttemptOutcome(
            deliveryID: row.id, previousAttemptCount: row.attemptCount, result: .dead, statusCode: nil,
            error: "not sent: \(defect); repair the row, then retry it", startedAt: now, finishedAt: now,
            requested: false)
        outcome.rowID = row.rowID
        outcome.endpointID = row.endpointID
        outcome.fingerprint = fingerprint
        summary.count(row.endpointID) { $0.deadLettered += 1 }
        logger.log(
            .warn, "delivery cannot be sent as it stands; dead-lettered without sending",
            [
                "rowid": String(row.rowID), "delivery_id": row.id, "endpoint_id": row.endpointID,
                "reason": defect,
                "repair": "fix the row in webhook_deliveries (rowid \(row.rowID)), then keysat-webhooks deliveries retry ID",
            ])
        outcomes.append(outcome)
    }

    /// Rows read after an endpoint's breaker opened are skipped as they come; ordered ones wait
    /// for their chain.
    private func skipBrokenAndChained() {
        for endpoint in endpoints.broken {
            let skipped = due.drop(endpoint)
            if skipped > 0 { summary.count(endpoint) { $0.skipped += skipped } }
        }
        for endpoint in chains.endpoints { _ = due.drop(endpoint) }
        for endpoint in endpoints.rateDeferred {
            let left = due.drop(endpoint)
            if left > 0 { summary.count(endpoint) { $0.rateLimited += left } }
        }
    }

    /// A destination refused by the network policy is said once per endpoint and run: a run
    /// whose every receiver was refused must not look like a quiet, healthy one.
    private func warnRefused(_ delivery: DueDelivery, address: String) {
        guard refusalsWarned.insert(delivery.endpointID).inserted else { return }
        logger.refusedDestination(endpointID: delivery.endpointID, url: delivery.url, address: address)
    }

    /// Whether the endpoint's client certificate files (if it has one) can be used: checked once
    /// per run; when not, the endpoint is held for the run (its deliveries stay due: a
    /// handshake without the certificate would only fail) and that is said once.
    private func certificateReady(_ row: DueDelivery) -> Bool {
        guard let certificate = row.settings.clientCertificate else { return true }
        if certificateChecks[row.endpointID] == nil {
            do {
                try certificate.check()
                certificateChecks[row.endpointID] = .some(nil)
            } catch {
                let problem = KeysatError.from(error).message
                certificateChecks[row.endpointID] = .some(problem)
                logger.log(
                    .warn, "endpoint's client certificate cannot be used; its deliveries wait",
                    [
                        "endpoint_id": row.endpointID, "reason": problem,
                        "repair": "keysat-webhooks endpoint update \(row.endpointID) --client-cert PATH --client-key PATH",
                    ])
            }
        }
        return certificateChecks[row.endpointID] == .some(nil)
    }

    /// Whether the endpoint's Ed25519 signing keys (if any) are keys: one another program wrote
    /// that is not would send requests without the v1a signature its receivers verify, so the
    /// endpoint is held for the run instead (its deliveries stay due), said once.
    private func signingKeysReady(_ row: DueDelivery) -> Bool {
        guard row.signingKey != nil || row.previousSigningKey != nil else { return true }
        let keys = [row.signingKey, row.previousSigningKey].compactMap { $0 }
        return judgedOnce(
            ["signing key", row.endpointID] + keys, endpoint: row.endpointID,
            warning: "endpoint signing key is not a whsk_ key; its deliveries wait",
            repair: "keysat-webhooks endpoint rotate-secret \(row.endpointID) --signing-key-file PATH"
        ) { keys.allSatisfy { AsymmetricKey.parts(ofSigningKey: $0) != nil } }
    }

    /// Whether the endpoint's stored filter (if any) is one this program reads. keysat-enqueue
    /// wrote the deliveries of an endpoint whose filter it could not read, rather than lose
    /// them; sending them could send events the filter was set to keep away, so they wait
    /// until the operator sets a filter or removes it, said once per run. Judged once per
    /// endpoint and text, not per row.
    private func filterReady(_ row: DueDelivery) -> Bool {
        guard let text = row.settings.filter else { return true }
        return judgedOnce(
            ["filter", row.endpointID, text], endpoint: row.endpointID,
            warning: "endpoint's stored filter cannot be read; its deliveries wait",
            repair: "keysat-webhooks endpoint update \(row.endpointID) --filter JSON (or --no-filter)"
        ) { EventFilter.isReadable(text) }
    }

    /// A stored setting judged once per run and value (`parts`: what it is, the endpoint, the
    /// stored text), and the endpoint's hold said once, with how to repair it.
    private func judgedOnce(
        _ parts: [String], endpoint: String, warning: String, repair: String, _ check: () -> Bool
    ) -> Bool {
        let fingerprint = parts.joined(separator: "\u{0}")
        if let ready = storedChecks[fingerprint] { return ready }
        let ready = check()
        storedChecks[fingerprint] = ready
        if !ready { logger.log(.warn, warning, ["endpoint_id": endpoint, "repair": repair]) }
        return ready
    }

    /// Settings another program wrote that are not settings: the defaults are used, and said
    /// once per endpoint and run, with how to repair them.
    private func warnSettings(_ endpoint: String, _ problem: String) {
        guard settingsWarned.insert(endpoint).inserted else { return }
        logger.log(
            .warn, "endpoint settings cannot be read",
            [
                "endpoint_id": endpoint, "reason": problem,
                "repair": "keysat-webhooks endpoint update \(endpoint) with --retry-schedule, --retry-jitter, --header or --rate",
            ])
    }

    /// Disables `endpoint`; with `failingSince`, for its failing streak begun then, which makes
    /// later runs probe it.
    private func disable(_ endpoint: String, reason: String, failingSince: Timestamp? = nil) throws {
        endpoints.markDisabled(endpoint)
        try recording { try store.drain() }
        guard try store.disableEndpoint(id: endpoint, reason: reason, failingSince: failingSince) else { return }
        summary.endpointsDisabled += 1
        logger.log(.warn, "endpoint disabled", ["endpoint_id": endpoint, "reason": reason])
    }

    /// Endpoints whose every attempt failed in this run: disabled when that has lasted longer
    /// than `--disable-after`; before that, announced (`webhook.endpoint.failing`) when the
    /// streak reaches a level of it (`OperationalEvent.failingLevels`: 50 and 90 %), the
    /// highest level reached only, each at most once per streak (the store remembers).
    private func disableFailingEndpoints() throws {
        try recording { try store.drain() }
        let now = clock.now()
        let limit = options.disableAfterSeconds * 1_000_000
        for endpoint in endpoints.failingThroughout {
            guard let since = try store.failingSince(endpointID: endpoint) else { continue }
            let failing = now.microseconds - since.microseconds
            let reached = OperationalEvent.failingLevels.last { failing * 100 >= limit * Int64($0) }
            if failing > limit {
                try disable(endpoint, reason: "every attempt failed since \(since.rfc3339)", failingSince: since)
            } else if let percent = reached {
                announceFailing(endpoint, since: since, percent: percent)
            }
        }
    }

    // MARK: - Probes of endpoints disabled for failing

    /// Sends again the newest dead delivery of each endpoint disabled for failing whose probe is
    /// due (`DeliveryStore.takeProbes`: not probed by any run for `--probe-every`), as the
    /// round's first requests, through the same transport (the network policy, the endpoint's
    /// signatures, headers and certificate). The endpoint's other deliveries are left due for
    /// the round (`start`).
    private func startProbes() throws {
        let taken: [DueDelivery]
        do {
            taken = try store.takeProbes(everySeconds: options.probeEverySeconds, limit: options.concurrency)
        } catch {
            readFailure = error
            return
        }
        for probe in taken {
            probing.insert(probe.endpointID)
            if let problem = probe.settingsProblem { warnSettings(probe.endpointID, problem) }
            guard probe.defect == nil, !probe.settings.mayNotSend, certificateReady(probe), signingKeysReady(probe),
                filterReady(probe), mayStart()
            else { continue }
            try recording {
                if requestsStarted == 0 { try store.prepareToRecord() }
                try store.checkRecording()
            }
            logger.log(
                .info, "probing disabled endpoint", ["endpoint_id": probe.endpointID, "delivery_id": probe.id])
            let tag = nextTag
            try send(probe)
            if nextTag != tag { probeTags.insert(nextTag) }
        }
    }

    /// A probe's outcome, recorded as any attempt's: delivered, or dead again (never a retry:
    /// its endpoint is disabled; nor announced again). A 2xx enables the endpoint again, once
    /// the outcome is committed, and re-queues what the outage dead-lettered
    /// (`DeliveryStore.recoverEndpoint`).
    private func probed(_ delivery: DueDelivery, _ result: HTTPResult) throws {
        let endpoint = delivery.endpointID
        var decision = policy.decide(result, for: delivery, transportFailures: endpoints[endpoint].transportFailures)
        let answered = decision.outcome.result == .delivered
        if !answered { decision.outcome.result = .dead }
        decision.outcome.isProbe = true
        decision.disableReason = nil
        decision.tripBreaker = false
        _ = endpoints.finished(endpoint, decision)
        record(decision.outcome, delivery)
        guard answered, let status = result.status else {
            logger.log(
                .info, "probe failed; endpoint stays disabled",
                [
                    "endpoint_id": endpoint, "delivery_id": delivery.id,
                    "status": result.status.map(String.init) ?? "-", "error": decision.outcome.error ?? "",
                ])
            return
        }
        try flush()
        try recording { try store.drain() }
        let reason = "probe of delivery \(delivery.id) answered HTTP \(status)"
        let recovered: Int?
        do {
            recovered = try store.recoverEndpoint(id: endpoint, reason: reason)
        } catch {
            // The probe's outcome is committed; the other requests in flight must be recorded
            // too: the endpoint stays disabled, and a later probe recovers it.
            logger.log(
                .warn, "endpoint answered its probe but could not be re-enabled; a later probe will try again",
                ["endpoint_id": endpoint, "error": KeysatError.from(error).message])
            return
        }
        guard let requeued = recovered else { return }
        summary.endpointsRecovered += 1
        logger.log(
            .warn, "endpoint re-enabled", ["endpoint_id": endpoint, "reason": reason, "requeued": String(requeued)])
    }

    /// Announces a level of `endpoint`'s failing streak; a failure to is said, and changes
    /// nothing else the run does.
    private func announceFailing(_ endpoint: String, since: Timestamp, percent: Int) {
        do {
            let data = OperationalEvent.failingData(
                endpointID: endpoint, failingSince: since, percent: percent,
                disableAfterSeconds: options.disableAfterSeconds)
            let announced = try store.announceFailing(
                endpointID: endpoint, since: since, percent: percent, data: data)
            guard announced else { return }
            logger.log(
                .info, "endpoint failing",
                [
                    "endpoint_id": endpoint, "since": since.rfc3339,
                    "percent_of_disable_after": String(percent),
                ])
        } catch {
            OperationalEvent.warnNotEnqueued(OperationalEvent.endpointFailing, error)
        }
    }

    // MARK: - Recording

    /// Runs `body`, a call that records or proves recording, turning its failure into a
    /// `RecordingFailure`: the round then stops and says what was sent and not recorded.
    private func recording(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as RecordingFailure {
            throw error
        } catch {
            throw RecordingFailure(cause: KeysatError.from(error))
        }
    }

    /// Counts and logs an outcome and queues it for the next commit.
    private func record(_ outcome: AttemptOutcome, _ delivery: DueDelivery) {
        let word: String
        switch outcome.result {
        case .delivered:
            summary.count(delivery.endpointID) { $0.delivered += 1 }
            word = "delivered"
        case .retry:
            summary.count(delivery.endpointID) { $0.retryScheduled += 1 }
            word = "retry_scheduled"
        case .dead:
            summary.count(delivery.endpointID) { $0.deadLettered += 1 }
            word = "dead_lettered"
            logger.log(
                .warn, "delivery dead-lettered",
                [
                    "delivery_id": delivery.id, "endpoint_id": delivery.endpointID,
                    "event_type": delivery.eventType, "attempts": String(delivery.attemptCount + 1),
                    "last_error": outcome.error ?? "",
                ])
        }
        if logger.enabled(.debug) {
            logger.log(
                .debug, "attempt",
                [
                    "delivery_id": delivery.id, "endpoint_id": delivery.endpointID,
                    "attempt": String(delivery.attemptCount + 1), "outcome": word,
                    "status": outcome.statusCode.map(String.init) ?? "-",
                    "duration_ms": String(
                        (outcome.finishedAt.microseconds - outcome.startedAt.microseconds) / 1000),
                    "error": outcome.error ?? "",
                ])
        }
        outcomes.append(outcome)
    }

    /// Commits when the batch is full or the commit interval has passed.
    private func flushIfDue() throws {
        guard !outcomes.isEmpty else { return }
        if outcomes.count >= options.flushBatch
            || clock.elapsed() - lastFlush >= options.commitIntervalMS * 1000
        {
            try flush()
        }
    }

    private func flush() throws {
        try recording { try store.record(outcomes) }
        outcomes.removeAll(keepingCapacity: true)
        lastFlush = clock.elapsed()
    }
}
