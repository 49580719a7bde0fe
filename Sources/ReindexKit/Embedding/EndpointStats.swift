import Foundation

/// What one endpoint did in a run: requests, inputs, failures and the
/// latency of its answers. Latencies go into a fixed log-scale histogram
/// (buckets 5% wide from 0.1 ms to ~30 min), so memory stays the same
/// whatever the number of requests (DESIGN.md invariant 10) and the p95 is
/// exact to within 5%.
public struct EndpointStats: Sendable, Equatable {
    public private(set) var requests = 0
    public private(set) var inputs = 0
    public private(set) var failures = 0
    /// HTTP answers whose latency was recorded.
    public private(set) var answers = 0
    private var totalSeconds = 0.0
    private var fastest = Double.infinity
    private var slowest = 0.0
    private var buckets = [Int](repeating: 0, count: Self.bucketCount)

    static let smallest = 0.0001
    static let ratio = 1.05
    static let bucketCount = 350

    public init() {}

    /// A request sent (a batch or a probe) with `inputs` texts.
    public mutating func sent(inputs n: Int) {
        requests += 1
        inputs += n
    }

    /// A request that got no usable answer (connection error, timeout, 5xx, 429).
    public mutating func failed() {
        failures += 1
    }

    /// An HTTP answer after `seconds`.
    public mutating func answered(after seconds: Double) {
        answers += 1
        totalSeconds += seconds
        fastest = min(fastest, seconds)
        slowest = max(slowest, seconds)
        buckets[Self.bucket(seconds)] += 1
    }

    static func bucket(_ seconds: Double) -> Int {
        guard seconds > smallest else { return 0 }
        return min(bucketCount - 1, Int((log(seconds / smallest) / log(ratio)).rounded(.down)) + 1)
    }

    /// The middle of bucket `i` (geometric), in seconds.
    static func value(ofBucket i: Int) -> Double {
        i == 0 ? smallest : smallest * pow(ratio, Double(i) - 0.5)
    }

    public var meanSeconds: Double? { answers > 0 ? totalSeconds / Double(answers) : nil }

    /// The latency 95% of answers stayed under (within 5%, and never outside
    /// the fastest and slowest answer).
    public var p95Seconds: Double? { quantile(0.95) }

    public func quantile(_ q: Double) -> Double? {
        guard answers > 0 else { return nil }
        let rank = Int((q * Double(answers)).rounded(.up))
        var seen = 0
        for (i, n) in buckets.enumerated() where n > 0 {
            seen += n
            if seen >= rank { return min(slowest, max(fastest, Self.value(ofBucket: i))) }
        }
        return slowest
    }
}
