import Foundation

/// Counts of one source in a run summary.
public struct SourceSummary: Sendable, Equatable {
    public var name: String
    public var scanned = 0
    public var skipped = 0
    public var unchanged = 0
    public var added = 0
    public var changed = 0
    public var removed = 0
    public var embedded = 0
    public var reused = 0
    public var failed = 0
    public var truncated = 0
    public var carriedOver = 0

    var json: [String: Any] {
        ["scanned": scanned, "skipped": skipped, "unchanged": unchanged, "added": added, "changed": changed,
         "removed": removed, "embedded": embedded, "reused": reused, "failed": failed, "truncated": truncated,
         "carried_over": carriedOver]
    }
}
