import Foundation
import Logging

/// The model servers of a job (`model.url`, or `model.endpoints`: several
/// servers of one model) and which one gets each request.
///
/// `acquire` hands out the least-loaded healthy endpoint (requests in flight
/// ÷ weight, each within its own concurrency); `release` records what the
/// request came to. With several endpoints, one that fails (a connection
/// error, a timeout, a streak of 5xx) is taken out with a growing backoff and
/// probed back in with the drift probe texts, whose answers must agree with
/// the reference — the live file's probes, or the first endpoint listed
/// that answered — so an endpoint is never given rows before its model is
/// known to be the same (`admit` does that for every endpoint at the start).
/// The run fails (69) only when no endpoint is left, naming each and why.
///
/// With one endpoint nothing is taken out: `BatchEmbedder`'s retries
/// behave exactly as they did before there were fleets.
public final class EndpointPool: @unchecked Sendable {
    public struct Member: Sendable {
        /// The URL as messages show it (no credentials).
        public let display: String
        public let weight: Double
        public let concurrency: Int
        public let client: any EmbeddingClient
    }

    /// One request's hold on an endpoint, from `acquire` to `release`.
    public struct Lease: Sendable {
        let index: Int
        public let client: any EmbeddingClient
        public let display: String
        let inputs: Int
        /// `EndpointPool.clock` when it was handed out.
        let started: Double
    }

    public let members: [Member]
    let policy: EndpointHealth.Policy
    private let model: ModelConfig
    private let counters: RunCounters
    private let logger: Logger

    private let lock = NSLock()
    private var health: [EndpointHealth]
    private var inFlight: [Int]
    private var stats: [EndpointStats]
    /// The probes every endpoint must agree with; empty until known.
    private var reference: [Probe] = []
    /// What `reference` is, for messages: "the live file's probes" or an endpoint.
    private var referenceName = ""
    /// The endpoints that answered `admit`'s probes when all of them disagreed
    /// with the live file, in listed order: `rebase` chooses among them.
    private var disagreeing: [(index: Int, probes: [Probe])] = []

    /// One client per endpoint of `model.fleet`, built by `makeClient` from
    /// `model.serving(endpoint)`.
    public convenience init(model: ModelConfig, counters: RunCounters, logger: Logger, makeClient: (ModelConfig) -> any EmbeddingClient) {
        let members = model.fleet.map { e -> Member in
            let one = model.serving(e)
            return Member(display: Endpoint(model: one, apiKey: nil).display, weight: e.weight,
                          concurrency: model.concurrency(of: e), client: makeClient(one))
        }
        self.init(members: members, model: model, counters: counters, logger: logger)
    }

    init(members: [Member], model: ModelConfig, counters: RunCounters, logger: Logger,
         policy: EndpointHealth.Policy? = nil) {
        precondition(!members.isEmpty, "a pool needs an endpoint")
        self.members = members
        self.model = model
        self.counters = counters
        self.logger = logger
        self.policy = policy ?? EndpointHealth.Policy(maxRetries: model.maxRetries, takesOut: members.count > 1)
        inFlight = Array(repeating: 0, count: members.count)
        stats = Array(repeating: EndpointStats(), count: members.count)
        var h = Array(repeating: EndpointHealth(), count: members.count)
        if members.count == 1 {
            // One endpoint is its own reference: in rotation from the start, as it always was.
            h[0].probeAgreed()
        }
        health = h
    }

    /// More than one endpoint: admission, takeouts and per-endpoint reports apply.
    public var isFleet: Bool { members.count > 1 }

    /// Requests in flight across every endpoint.
    public var totalConcurrency: Int { members.reduce(0) { $0 + $1.concurrency } }

    /// The client for one-off questions (limits, window, tokenizer): the
    /// first endpoint listed that is in rotation, else the first listed.
    public var preferredClient: any EmbeddingClient {
        let i = lock.withLock { health.firstIndex(where: \.isHealthy) } ?? 0
        return members[i].client
    }

    /// The endpoints together, for messages: the URL of one, or a list.
    public var name: String {
        members.count == 1 ? members[0].display : "endpoints " + members.map(\.display).joined(separator: ", ")
    }

    /// Seconds on a monotonic clock. (Not `ContinuousClock`: subtracting its
    /// instants trapped in a release build here — "Not enough bits to
    /// represent a signed value" in `Duration.components`.)
    static var clock: Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    private var now: Double { Self.clock }

    // MARK: Requests

    private enum Step {
        case use(Int)
        case probe(Int)
        case wait(Double)
        case fail(String)
    }

    /// An endpoint for a request of `inputs` texts: the least-loaded healthy
    /// one with room. When none has room, waits; when one is due for a probe,
    /// probes it first (this task does it, once). Throws
    /// `.modelUnavailable` when no endpoint is left.
    public func acquire(inputs: Int) async throws -> Lease {
        while true {
            try Task.checkCancellation()
            let step: Step = lock.withLock {
                let t = now
                let candidates = members.indices.map { i in
                    EndpointSelection.Candidate(healthy: health[i].isHealthy, inFlight: inFlight[i],
                                                concurrency: members[i].concurrency, weight: members[i].weight)
                }
                if let i = EndpointSelection.pick(candidates) {
                    inFlight[i] += 1
                    stats[i].sent(inputs: inputs)
                    return .use(i)
                }
                if let i = health.indices.first(where: { health[$0].state == .pending || health[$0].isDue(now: t) }) {
                    health[i].startProbe()
                    return .probe(i)
                }
                if health.contains(where: \.isHealthy) || health.contains(where: { $0.state == .probing }) {
                    return .wait(0.01)  // every healthy endpoint is at its concurrency, or a probe decides
                }
                if health.allSatisfy({ $0.isGone(policy) }) {
                    return .fail(exhaustedMessage())
                }
                let next = health.compactMap(\.dueAt).min() ?? (t + 0.05)
                return .wait(max(0.005, min(0.1, next - t)))
            }
            switch step {
            case .use(let i):
                return Lease(index: i, client: members[i].client, display: members[i].display, inputs: inputs, started: Self.clock)
            case .probe(let i):
                await probeBack(i)
            case .wait(let seconds):
                try await Task.sleep(for: .milliseconds(Int((seconds * 1000).rounded(.up))))
            case .fail(let message):
                throw ReindexError.modelUnavailable(url: name, detail: message)
            }
        }
    }

    /// Records what the request came to. Returns true when its endpoint is
    /// out of rotation now: the request should be sent elsewhere without
    /// spending its own retries (`BatchEmbedder.send`).
    @discardableResult
    public func release(_ lease: Lease, _ outcome: EndpointHealth.Outcome) -> Bool {
        let seconds = Self.clock - lease.started
        let (out, takenOut, why) = lock.withLock { () -> (Bool, Bool, String?) in
            let i = lease.index
            inFlight[i] -= 1
            switch outcome {
            case .answered:
                stats[i].answered(after: seconds)
            case .serverError, .throttled:
                stats[i].answered(after: seconds)
                stats[i].failed()
            case .connection, .timeout:
                stats[i].failed()
            }
            let wasHealthy = health[i].isHealthy
            let out = health[i].record(outcome, now: now, policy: policy)
            return (out, wasHealthy && out, health[i].reason)
        }
        if takenOut {
            let others = lock.withLock { health.filter(\.isHealthy).count }
            logger.warning("model endpoint taken out of rotation; probed again after a backoff",
                           metadata: ["endpoint": "\(lease.display)", "error": "\(why ?? "")", "healthy_left": "\(others)"])
        }
        return out
    }

    /// Why every endpoint is gone: one line naming each.
    private func exhaustedMessage() -> String {
        let each = members.indices.map { i in
            "\(members[i].display): \(health[i].isRefused ? "refused, " : "")\(health[i].reason ?? "no answer")"
        }.joined(separator: "; ")
        return "no endpoint left (got \(each)) — check that the servers are running and reachable and serve model.name; committed work is kept, rerun the same command to resume"
    }

    // MARK: Probes

    /// What one endpoint answered to the probe texts.
    enum ProbeAnswer {
        case probes([Probe])
        /// Vectors of another length than `model.dimensions`.
        case dimensions(Int)
        /// No usable answer: why.
        case failed(String)
    }

    /// The probe texts, once, to endpoint `i` (no retries: its backoff is the
    /// pool's). Vectors come back normalized, as the live file stores them.
    func probeOnce(_ i: Int) async -> ProbeAnswer {
        let inputs = Probe.texts.map { model.prefix + $0 }
        counters.add("requests")
        counters.add("inputs_sent", inputs.count)
        let started = Self.clock
        lock.withLock { stats[i].sent(inputs: inputs.count) }
        func answered(failed: Bool) {
            let seconds = Self.clock - started
            lock.withLock {
                stats[i].answered(after: seconds)
                if failed { stats[i].failed() }
            }
        }
        do {
            switch try await members[i].client.embed(inputs) {
            case .rejected(let status, let message, _):
                answered(failed: true)
                return .failed("HTTP \(status): \(message)")
            case .vectors(let vectors):
                answered(failed: false)
                guard vectors.count == inputs.count else { return .failed("\(vectors.count) vectors for \(inputs.count) probe texts") }
                if let wrong = vectors.first(where: { $0.count != model.dimensions }) { return .dimensions(wrong.count) }
                var probes: [Probe] = []
                for (text, vector) in zip(Probe.texts, vectors) {
                    var v = vector
                    do {
                        try v.withUnsafeMutableBufferPointer { try VectorNormalizer.normalize($0) }
                    } catch {
                        return .failed("a probe vector with NaN, Inf or only zeros")
                    }
                    probes.append(Probe(text: text, vector: v))
                }
                return .probes(probes)
            }
        } catch let error as TransportError {
            lock.withLock { stats[i].failed() }
            return .failed(error.message)
        } catch {
            answered(failed: true)
            return .failed("\(error)")
        }
    }

    /// Brings endpoint `i` (pending, or out with its backoff passed) back in
    /// when its probe answers agree with the reference; refuses it when they
    /// do not; takes it out again, longer, when it does not answer.
    private func probeBack(_ i: Int) async {
        let answer = await probeOnce(i)
        let display = members[i].display
        switch answer {
        case .failed(let why):
            let strikes = lock.withLock { () -> Int in
                health[i].probeFailed(why, now: now, policy: policy)
                return health[i].strikes
            }
            logger.notice("model endpoint still out", metadata: ["endpoint": "\(display)", "error": "\(why)", "strikes": "\(strikes)"])
        case .dimensions(let n):
            refuse(i, "it returns \(n) dimensions (model.dimensions is \(model.dimensions)): another model")
        case .probes(let probes):
            let verdict = lock.withLock { () -> String? in
                if reference.isEmpty {
                    reference = probes
                    referenceName = "\(display), the first endpoint that answered"
                }
                return Probe.drift(stored: reference, fresh: probes).map { "it serves another model: \($0) against \(referenceName)" }
            }
            if let verdict {
                refuse(i, verdict)
            } else {
                lock.withLock { health[i].probeAgreed() }
                logger.notice("model endpoint in rotation", metadata: ["endpoint": "\(display)"])
            }
        }
    }

    private func refuse(_ i: Int, _ why: String) {
        lock.withLock { health[i].refuse(why) }
        logger.warning("model endpoint refused for this run: it serves another model than the others; the run goes on without it",
                       metadata: ["endpoint": "\(members[i].display)", "detail": "\(why)"])
    }

    // MARK: Admission

    /// What the first contact with every endpoint found.
    public enum Admission: Sendable, Equatable {
        /// Some endpoints agree with the reference and are in rotation; the
        /// probes for the new file's meta (the first agreeing endpoint's).
        case agreed(probes: [Probe])
        /// Every endpoint that answered disagrees with the live file: drift,
        /// handled as with one server (`rebase` for `--on-model-change=full`).
        case drift(String)
    }

    /// Probes every endpoint once, together, before any row is sent. The
    /// reference is `stored` (the live file's probes) when there are any,
    /// else the first endpoint listed that answers. An endpoint that does not
    /// answer is taken out and probed again later, against the reference;
    /// when none answers, probes again with the backoff until one does or
    /// none is left (69).
    public func admit(stored: [Probe]) async throws -> Admission {
        var answered: [(index: Int, answer: ProbeAnswer)] = []
        while answered.isEmpty {
            let due = lock.withLock { health.indices.filter { health[$0].state == .pending || health[$0].isDue(now: now) } }
            if !due.isEmpty {
                lock.withLock { for i in due { health[i].startProbe() } }
                let results = await withTaskGroup(of: (Int, ProbeAnswer).self) { group in
                    for i in due { group.addTask { (i, await self.probeOnce(i)) } }
                    var out: [(Int, ProbeAnswer)] = []
                    for await r in group { out.append(r) }
                    return out.sorted { $0.0 < $1.0 }
                }
                for (i, answer) in results {
                    if case .failed(let why) = answer {
                        lock.withLock { health[i].probeFailed(why, now: now, policy: policy) }
                        logger.warning("model endpoint did not answer the probes; out of rotation until it does",
                                       metadata: ["endpoint": "\(members[i].display)", "error": "\(why)"])
                    } else {
                        answered.append((i, answer))
                    }
                }
                continue
            }
            let wait: Double? = lock.withLock {
                health.allSatisfy({ $0.isGone(policy) }) ? nil : max(0.005, (health.compactMap(\.dueAt).min() ?? now) - now)
            }
            guard let wait else { throw ReindexError.modelUnavailable(url: name, detail: lock.withLock { exhaustedMessage() }) }
            try await Task.sleep(for: .milliseconds(Int((wait * 1000).rounded(.up))))
        }

        var valid: [(index: Int, probes: [Probe])] = []
        var wrong: [(index: Int, dimensions: Int)] = []
        for (i, answer) in answered {
            switch answer {
            case .probes(let p): valid.append((i, p))
            case .dimensions(let n): wrong.append((i, n))
            case .failed: break
            }
        }
        if valid.isEmpty, let first = wrong.first {
            // Every endpoint that answered has another dimension: the job is wrong, as with one server.
            let list = wrong.map { "\(members[$0.index].display) returned \($0.dimensions)" }.joined(separator: ", ")
            throw ReindexError.configuration(key: "model.dimensions", detail: "the job declares \(model.dimensions), but \(model.name) at \(list) dimensions for the drift probes (got \(first.dimensions)) — set model.dimensions to \(first.dimensions), or point model.name/model.endpoints at a model with \(model.dimensions); rerunning alone cannot fix it")
        }
        for w in wrong { refuse(w.index, "it returns \(w.dimensions) dimensions (model.dimensions is \(model.dimensions)): another model") }

        if !stored.isEmpty {
            let agreeing = valid.filter { Probe.drift(stored: stored, fresh: $0.probes) == nil }
            guard let first = agreeing.first else {
                let each = valid.map { "\(members[$0.index].display): \(Probe.drift(stored: stored, fresh: $0.probes) ?? "")" }
                lock.withLock { disagreeing = valid }
                return .drift("every endpoint that answered serves another model than the live file (got \(each.joined(separator: "; ")))")
            }
            lock.withLock {
                reference = stored
                referenceName = "the live file's probes"
            }
            settle(valid)
            return .agreed(probes: first.probes)
        }
        let first = valid[0]
        lock.withLock {
            reference = first.probes
            referenceName = "\(members[first.index].display), the first endpoint listed that answered"
        }
        settle(valid)
        return .agreed(probes: first.probes)
    }

    /// After a drift with `--on-model-change=full`: the first endpoint listed
    /// that answered becomes the reference; the others must agree with it.
    /// Returns its probes, for the new file's meta.
    public func rebase() -> [Probe] {
        let valid = lock.withLock { disagreeing }
        guard let first = valid.first else { return [] }
        lock.withLock {
            reference = first.probes
            referenceName = "\(members[first.index].display), the first endpoint listed that answered"
            disagreeing = []
        }
        settle(valid)
        return first.probes
    }

    /// Every answering endpoint compared with the reference: in rotation, or refused.
    private func settle(_ valid: [(index: Int, probes: [Probe])]) {
        let (ref, refName) = lock.withLock { (reference, referenceName) }
        for v in valid {
            if let drift = Probe.drift(stored: ref, fresh: v.probes) {
                refuse(v.index, "it serves another model: \(drift) against \(refName)")
            } else {
                lock.withLock { health[v.index].probeAgreed() }
            }
        }
    }

    // MARK: Reports

    /// Per endpoint, in listed order: what it did and where it stands.
    public func report() -> [EndpointSummary] {
        lock.withLock {
            members.indices.map { i in
                let h = health[i]
                let state: String
                switch h.state {
                case .healthy: state = "healthy"
                case .out, .probing: state = "out"
                case .refused: state = "refused"
                case .pending: state = "unused"
                }
                return EndpointSummary(url: members[i].display, state: state, reason: h.isHealthy ? nil : h.reason,
                                       weight: members[i].weight, concurrency: members[i].concurrency, stats: stats[i])
            }
        }
    }

    /// The progress line's per-endpoint part: `url requests/inputs state`.
    public func progressDetail() -> String {
        report().map { "\($0.url) \($0.inputs) inputs\($0.state == "healthy" ? "" : " (\($0.state))")" }.joined(separator: ", ")
    }
}
