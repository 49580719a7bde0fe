import Foundation

/// A graceful-stop request (SIGINT/SIGTERM): no new batches start; in-flight
/// ones may finish and commit.
public final class StopSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var _signal: Int32?

    public init() {}

    public var signal: Int32? { lock.withLock { _signal } }
    public var isRequested: Bool { signal != nil }

    /// Returns true on the first request.
    @discardableResult
    public func request(_ signal: Int32) -> Bool {
        lock.withLock {
            if _signal != nil { return false }
            _signal = signal
            return true
        }
    }
}
