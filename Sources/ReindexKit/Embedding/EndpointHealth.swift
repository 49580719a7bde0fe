import Foundation

/// Whether one model endpoint of a fleet gets requests, as a pure value: the
/// pool feeds it what happened and the time, and asks it what to do. No
/// clock, no I/O, so every transition is a unit test.
///
///     pending ──probe agrees──▶ healthy ◀──probe agrees── probing
///        │                        │  ▲                       ▲  │
///        │ probe fails            │  └── a real answer       │  │ probe fails:
///        ▼                        ▼      resets strikes      │  ▼ strikes + 1
///       out(until) ◀── connection error, timeout, ───────── out(until)
///                      a streak of 5xx: strikes + 1     (backoff elapsed)
///     refused: another model (or dimension) than the reference; for the whole run.
///
/// Strikes count the times the endpoint was taken out since its last real
/// answer; the backoff grows with them, so a dead server costs a probe
/// every 30 s at most while the others carry the run. An endpoint whose
/// strikes pass `maxRetries` is exhausted: the run gives up (69) only when
/// every endpoint not refused is out and exhausted — the same patience a
/// one-server job gives its server.
public struct EndpointHealth: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        /// Not yet contacted: its probe answers decide.
        case pending
        /// In rotation.
        case healthy
        /// Taken out; probed again once `until` (seconds on the pool's clock) has passed.
        case out(until: Double)
        /// A probe to bring it back is in flight.
        case probing
        /// Serves another model (or dimension); never used in this run.
        case refused
    }

    /// What one request to the endpoint came to, as far as its health goes.
    public enum Outcome: Sendable, Equatable {
        /// An HTTP answer that says the server works (2xx, or a 4xx about the request).
        case answered
        /// No HTTP answer: refused or dropped connection, DNS failure.
        case connection(String)
        /// No answer in time.
        case timeout(String)
        /// 5xx (or 408): one of a streak.
        case serverError(String)
        /// 429 or 425: the server works but asks to slow down; never takes it out.
        case throttled(String)
    }

    public struct Policy: Sendable, Equatable {
        /// 5xx answers in a row that take an endpoint out.
        public var serverErrorStreak = 3
        /// Strikes past which an endpoint counts as exhausted (`model.max-retries`).
        public var maxRetries = 6
        /// Whether failures take an endpoint out at all: not with one endpoint,
        /// whose retries stay as they always were (`BatchEmbedder.send`).
        public var takesOut = true

        public init(serverErrorStreak: Int = 3, maxRetries: Int = 6, takesOut: Bool = true) {
            self.serverErrorStreak = serverErrorStreak
            self.maxRetries = maxRetries
            self.takesOut = takesOut
        }

        /// Seconds out after the `strikes`-th takeout: 0.25 s doubling, capped
        /// at 30 s — the request backoff without its jitter.
        public func backoff(strikes: Int) -> Double {
            min(30, 0.25 * pow(2, Double(max(1, strikes) - 1)))
        }
    }

    public private(set) var state: State = .pending
    public private(set) var strikes = 0
    public private(set) var serverErrors = 0
    /// Why it is out or refused, for the log, the summary and the final error.
    public private(set) var reason: String?

    public init() {}

    /// In rotation now (capacity aside).
    public var isHealthy: Bool { state == .healthy }

    public var isRefused: Bool { state == .refused }

    /// Out, and its backoff has passed: the next acquire probes it.
    public func isDue(now: Double) -> Bool {
        if case .out(let until) = state { return now >= until }
        return false
    }

    /// When a probe is due, for an endpoint that is out.
    public var dueAt: Double? {
        if case .out(let until) = state { return until }
        return nil
    }

    /// Out with no patience left (or refused): it counts as gone when
    /// deciding whether any endpoint is left.
    public func isGone(_ policy: Policy) -> Bool {
        switch state {
        case .refused: return true
        case .out: return strikes > policy.maxRetries
        case .pending, .healthy, .probing: return false
        }
    }

    /// Records a request's outcome. Returns true when the endpoint is out of
    /// rotation afterwards (taken out now, or already out): the request
    /// should go elsewhere without spending its own retries.
    @discardableResult
    public mutating func record(_ outcome: Outcome, now: Double, policy: Policy) -> Bool {
        guard state == .healthy else {
            // A request that left before the takeout (or a probe's own path): nothing more to learn.
            return state != .pending
        }
        switch outcome {
        case .answered:
            strikes = 0
            serverErrors = 0
            reason = nil
            return false
        case .throttled:
            return false
        case .connection(let why), .timeout(let why):
            guard policy.takesOut else { return false }
            takeOut(why, now: now, policy: policy)
            return true
        case .serverError(let why):
            serverErrors += 1
            guard policy.takesOut, serverErrors >= policy.serverErrorStreak else { return false }
            takeOut("\(serverErrors) server errors in a row, the last: \(why)", now: now, policy: policy)
            return true
        }
    }

    /// A probe to (re)admit it starts; only one at a time.
    public mutating func startProbe() {
        state = .probing
    }

    /// Its probe answers agree with the reference: back in rotation. Strikes
    /// stay until a real request succeeds, so a server that answers probes
    /// but fails every batch still runs out of patience.
    public mutating func probeAgreed() {
        state = .healthy
        serverErrors = 0
    }

    /// Its probe failed (no answer, an error status): out again, longer.
    public mutating func probeFailed(_ why: String, now: Double, policy: Policy) {
        takeOut(why, now: now, policy: policy)
    }

    /// It serves another model: refused for the run.
    public mutating func refuse(_ why: String) {
        state = .refused
        reason = why
    }

    private mutating func takeOut(_ why: String, now: Double, policy: Policy) {
        strikes += 1
        serverErrors = 0
        reason = why
        state = .out(until: now + policy.backoff(strikes: strikes))
    }
}

/// Which endpoint gets the next request: the least loaded healthy one, load
/// being requests in flight divided by weight; an endpoint at its own
/// concurrency gets none. Ties go to the larger weight, then to the one
/// listed first. Pure, for the unit tests.
public enum EndpointSelection {
    public struct Candidate: Sendable, Equatable {
        public var healthy: Bool
        public var inFlight: Int
        public var concurrency: Int
        public var weight: Double

        public init(healthy: Bool, inFlight: Int, concurrency: Int, weight: Double) {
            self.healthy = healthy
            self.inFlight = inFlight
            self.concurrency = concurrency
            self.weight = weight
        }
    }

    /// The index of the endpoint to use, or nil when none is healthy with room.
    public static func pick(_ candidates: [Candidate]) -> Int? {
        var best: Int?
        for (i, c) in candidates.enumerated() where c.healthy && c.inFlight < c.concurrency {
            guard let b = best else { best = i; continue }
            let load = Double(c.inFlight) / c.weight, bestLoad = Double(candidates[b].inFlight) / candidates[b].weight
            if load < bestLoad || (load == bestLoad && c.weight > candidates[b].weight) { best = i }
        }
        return best
    }
}
