import Foundation

/// The largest batch the server accepts, learned during the run (413s).
public final class BatchLimit: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int

    public init(_ initial: Int) { value = initial }

    public var current: Int { lock.withLock { value } }

    /// Returns true when this lowered the limit.
    @discardableResult
    public func shrink(to n: Int) -> Bool {
        lock.withLock {
            guard n < value else { return false }
            value = max(1, n)
            return true
        }
    }
}
