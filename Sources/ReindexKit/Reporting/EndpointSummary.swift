import Foundation

/// One model endpoint in a run summary (`endpoints` of the JSON summary, in
/// the order the job lists them) and in the metrics file.
public struct EndpointSummary: Sendable, Equatable, Encodable {
    /// The URL without credentials (`Endpoint.display`).
    public var url: String
    /// `healthy` (in rotation at the end), `out` (taken out: failing),
    /// `refused` (serves another model), `unused` (never contacted).
    public var state: String
    /// Why it is out or refused; nil when healthy.
    public var reason: String?
    public var weight: Double
    public var concurrency: Int
    /// Requests sent, batches and drift probes alike.
    public var requests: Int
    /// Inputs (texts) sent.
    public var inputs: Int
    /// Requests without a usable answer: connection errors, timeouts, 5xx, 429.
    public var failures: Int
    /// Latency of its HTTP answers, in milliseconds; nil without answers.
    public var meanMs: Double?
    public var p95Ms: Double?

    init(url: String, state: String, reason: String?, weight: Double, concurrency: Int, stats: EndpointStats) {
        self.url = url
        self.state = state
        self.reason = reason
        self.weight = weight
        self.concurrency = concurrency
        requests = stats.requests
        inputs = stats.inputs
        failures = stats.failures
        meanMs = stats.meanSeconds.map { ($0 * 10_000).rounded() / 10 }
        p95Ms = stats.p95Seconds.map { ($0 * 10_000).rounded() / 10 }
    }

    enum CodingKeys: String, CodingKey {
        case url, state, reason, weight, concurrency, requests, inputs, failures
        case meanMs = "mean_ms", p95Ms = "p95_ms"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(url, forKey: .url)
        try c.encode(state, forKey: .state)
        try c.encode(reason, forKey: .reason)  // null when healthy
        try c.encode(weight, forKey: .weight)
        try c.encode(concurrency, forKey: .concurrency)
        try c.encode(requests, forKey: .requests)
        try c.encode(inputs, forKey: .inputs)
        try c.encode(failures, forKey: .failures)
        try c.encode(meanMs, forKey: .meanMs)
        try c.encode(p95Ms, forKey: .p95Ms)
    }

    /// One line of the text summary.
    var text: String {
        let latency = meanMs.map { m in String(format: "mean %.1f ms, p95 %.1f ms", m, p95Ms ?? m) } ?? "no answers"
        return "  endpoint \(url): \(state)\(reason.map { " (\($0))" } ?? ""); \(requests) requests, \(inputs) inputs, \(failures) failures; \(latency)"
    }
}
