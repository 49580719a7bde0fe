import Foundation

/// What a run would do for one source (dry run, summary).
public struct SourcePlan: Sendable, Equatable {
    public var name: String
    public var scanned = 0
    public var skipped = 0
    public var truncated = 0
    public var unchanged = 0
    /// New rows and rows that failed before: embedded by the run.
    public var added = 0
    public var changed = 0
    public var removed = 0
    /// Rows whose attributes alone changed: updated without embedding.
    public var attributesChanged = 0
    /// Characters of model input to embed (for the token estimate): from the
    /// diff for a run, from the chunks themselves for a dry run.
    public var charsToEmbed = 0
    /// Rows and chunks a run would embed (dry run: rows it would chunk, new,
    /// changed, failed before, or re-chunked from a `/1` file).
    public var rowsToEmbed = 0
    public var chunksToEmbed = 0
    /// The watermark a `changed-column` scan read this source since (only
    /// the rows at or past it, plus every id); nil when it read every row.
    public var readSince: Watermark?
    /// A whole scan of a source with a `changed-column`: the rows it found
    /// new, changed or moved whose column had not moved past the live
    /// file's watermark; nil without the key or a watermark.
    public var missedByChangedColumn: Int?
    public var samples: [String: [String]] = ["added": [], "changed": [], "removed": [], "attributes_changed": []]
    public var eligible: Int { scanned - skipped }

    public init(name: String) { self.name = name }

    /// A source's plan from its scan and its diff with the live file.
    init(diff: SourceDiff, scan: ScanCounts?, sample: Int) {
        name = diff.name
        scanned = scan?.scanned ?? 0
        skipped = scan?.skipped ?? 0
        truncated = scan?.truncated ?? 0
        unchanged = diff.unchanged
        added = diff.new.count + diff.failed.count
        changed = diff.changed.count
        removed = diff.removed.count
        attributesChanged = diff.attributesChanged.count
        charsToEmbed = diff.charsToEmbed
        samples = ["added": diff.added(limit: sample), "changed": diff.changed.ids, "removed": diff.removed.ids,
                   "attributes_changed": diff.attributesChanged.ids]
    }

    public var hasChanges: Bool { added > 0 || changed > 0 || removed > 0 || attributesChanged > 0 }
}
