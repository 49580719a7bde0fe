import Foundation

/// Read-transaction timings of a scan, shared with the report.
public final class ScanStats: @unchecked Sendable {
    private let lock = NSLock()
    private var _longest: Duration = .zero
    private var _pages = 0

    public var longestReadTransaction: Duration { lock.withLock { _longest } }
    public var pages: Int { lock.withLock { _pages } }

    func record(_ d: Duration) {
        lock.withLock {
            _pages += 1
            if d > _longest { _longest = d }
        }
    }
}
