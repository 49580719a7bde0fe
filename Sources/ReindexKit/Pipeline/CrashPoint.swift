import Foundation

/// Fault injection for the crash-safety tests, in the spirit of SQLite's own
/// test hooks: with `REINDEX_CRASH_AT=<point>` the process sends itself
/// SIGKILL when it reaches that point, exactly as `kill -9` would. Points:
/// `scan`, `batch:<n>` (right after the n-th batch committed), `verify`,
/// `finalize` (new file complete, not yet renamed), `prev` (old file kept as
/// .prev, new one not yet renamed), `rename` (renamed, directory not yet
/// fsynced); on the clone path also `copy` (after each chunk of the copy
/// of the live file), `clone` (copied, not yet the work file), `delta`
/// (the delta applied to `items`, before embedding; reached by every run)
/// and `compact` (inside the rebuild of `vec_items`, before it commits).
/// Unset in production; documented in docs/operations.md.
public enum CrashPoint {
    static let spec = ProcessInfo.processInfo.environment["REINDEX_CRASH_AT"]
    private static let lock = NSLock()
    nonisolated(unsafe) private static var batches = 0

    static func reached(_ point: String) {
        if spec == point { die() }
    }

    static func batchCommitted() {
        guard let spec, spec.hasPrefix("batch:"), let n = Int(spec.dropFirst(6)) else { return }
        let count = lock.withLock { batches += 1; return batches }
        if count == n { die() }
    }

    private static func die() {
        FileHandle.standardError.write(Data("reindex: REINDEX_CRASH_AT=\(spec ?? "") reached; killing this process\n".utf8))
        kill(getpid(), SIGKILL)
        while true { pause() }
    }
}
