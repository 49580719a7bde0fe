import Foundation

/// Counters shared by concurrent batches; read by progress and the summary.
public final class RunCounters: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [String: Int] = [:]

    public init() {}

    public func add(_ key: String, _ n: Int = 1) {
        lock.withLock { values[key, default: 0] += n }
    }

    public subscript(key: String) -> Int {
        lock.withLock { values[key, default: 0] }
    }
}
