import Foundation

/// Counts of one source in a run summary.
public struct SourceSummary: Sendable, Equatable, Encodable {
    public var name: String
    public var scanned = 0
    public var skipped = 0
    public var unchanged = 0
    public var added = 0
    public var changed = 0
    public var removed = 0
    /// Rows whose attributes alone changed: updated without embedding.
    public var attributesChanged = 0
    public var embedded = 0
    public var reused = 0
    public var failed = 0
    public var truncated = 0
    public var carriedOver = 0
    /// Rows of this source in the new file.
    public var rows = 0
    /// `changed-column` scans: the watermark this run read the rows since
    /// (nil when it read every row), and the ids its id pass read.
    public var readSince: Watermark?
    public var ids = 0
    /// A whole scan with a `changed-column`: rows found changed although the
    /// column had not moved (nil when not counted).
    public var missedByChangedColumn: Int?

    /// `sources.<name>` of the JSON summary (the name is the key).
    enum CodingKeys: String, CodingKey {
        case scanned, skipped, unchanged, added, changed, removed, embedded, reused, failed, truncated, rows
        case carriedOver = "carried_over", attributesChanged = "attributes_changed"
        case readSince = "read_since", ids, missedByChangedColumn = "changed_column_missed"
    }

    /// How the scan read this source, for the text summary.
    var scanText: String {
        if let since = readSince { return "scanned \(scanned) rows with \(since.column) >= \(since.value) and \(ids) ids" }
        return "scanned \(scanned)"
    }
}
