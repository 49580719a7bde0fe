import Foundation
import GRDB

/// How one source's staged rows (`scan.rows`) compare with a vector file's
/// items (`live.items`): the one set difference behind both the plan (added,
/// changed, removed) and `verify` (missing, stale, extra).
public struct SourceDiff: Sendable, Equatable {
    /// A count and the first few ids (sorted) of one kind of difference.
    public struct IDList: Sendable, Equatable {
        public var count = 0
        public var ids: [String] = []
    }

    public var name: String
    /// Eligible rows of the primary.
    public var staged = 0
    /// Same id, same content hash: the vector is still right.
    public var unchanged = 0
    /// In the primary, not in the file, and not recorded as failed there.
    public var new = IDList()
    /// In the primary, not in the file, but in the file's `failures` (the model rejected it).
    public var failed = IDList()
    /// In both, with another content hash.
    public var changed = IDList()
    /// In the file, not in the primary any more.
    public var removed = IDList()
    /// Same content hash, other attributes (a message moved to another room):
    /// the vectors are still right, only the attribute columns change.
    public var attributesChanged = IDList()
    /// Characters of model input in new, failed and changed rows (for the token estimate).
    public var charsToEmbed = 0

    public init(name: String) { self.name = name }

    /// Rows a run must embed: new, failed before, or changed.
    public var toEmbed: Int { new.count + failed.count + changed.count }

    /// New and failed ids together, sorted (a dry run's "added").
    public func added(limit: Int) -> [String] { Array((new.ids + failed.ids).sorted().prefix(limit)) }

    /// Per source, in job order, then sources only the file has. Without a
    /// live file every staged row is new.
    static func compute(_ db: Database, sources: [String], attributes: [AttributeSpec] = [], liveAttached: Bool, sample: Int) throws -> [SourceDiff] {
        var diffs: [String: SourceDiff] = [:]
        for name in sources { diffs[name] = SourceDiff(name: name) }
        func ids(_ sql: String, _ source: String) throws -> [String] {
            try String.fetchAll(db, sql: "\(sql) ORDER BY 1 LIMIT ?", arguments: [source, sample])
        }
        guard liveAttached else {
            for row in try Row.fetchAll(db, sql: "SELECT source, count(*), coalesce(sum(length(input)), 0) FROM scan.rows GROUP BY source") {
                let name: String = row[0]
                diffs[name, default: SourceDiff(name: name)].staged = row[1]
                diffs[name, default: SourceDiff(name: name)].new.count = row[1]
                diffs[name, default: SourceDiff(name: name)].charsToEmbed = row[2]
            }
            for name in diffs.keys {
                diffs[name]!.new.ids = try ids("SELECT source_id FROM scan.rows WHERE source = ?", name)
            }
            return ordered(diffs, sources)
        }
        let moved = attributesDiffer(attributes)
        for row in try Row.fetchAll(db, sql: """
            SELECT r.source, count(*),
                   coalesce(sum(l.row_hash = r.hash AND NOT (\(moved))), 0),
                   coalesce(sum(l.row_hash != r.hash), 0),
                   coalesce(sum(l.source IS NULL AND f.source IS NULL), 0),
                   coalesce(sum(l.source IS NULL AND f.source IS NOT NULL), 0),
                   coalesce(sum(CASE WHEN l.source IS NULL OR l.row_hash != r.hash THEN length(r.input) END), 0),
                   coalesce(sum(l.row_hash = r.hash AND (\(moved))), 0)
            FROM scan.rows r
            LEFT JOIN temp.live_rows l ON l.source = r.source AND l.source_id = r.source_id
            LEFT JOIN live.failures f ON l.source IS NULL AND f.source = r.source AND f.source_id = r.source_id
            GROUP BY r.source
            """) {
            let name: String = row[0]
            var d = diffs[name] ?? SourceDiff(name: name)
            d.staged = row[1]
            d.unchanged = row[2]
            d.changed.count = row[3]
            d.new.count = row[4]
            d.failed.count = row[5]
            d.charsToEmbed = row[6]
            d.attributesChanged.count = row[7]
            diffs[name] = d
        }
        for row in try Row.fetchAll(db, sql: """
            SELECT l.source, count(*) FROM temp.live_rows l
            WHERE NOT EXISTS (SELECT 1 FROM scan.rows r WHERE r.source = l.source AND r.source_id = l.source_id)
            GROUP BY l.source
            """) {
            let name: String = row[0]
            diffs[name, default: SourceDiff(name: name)].removed.count = row[1]
        }
        for name in diffs.keys {
            var d = diffs[name]!
            if d.new.count > 0 {
                d.new.ids = try ids("""
                    SELECT r.source_id FROM scan.rows r WHERE r.source = ?
                      AND NOT EXISTS (SELECT 1 FROM temp.live_rows l WHERE l.source = r.source AND l.source_id = r.source_id)
                      AND NOT EXISTS (SELECT 1 FROM live.failures f WHERE f.source = r.source AND f.source_id = r.source_id)
                    """, name)
            }
            if d.failed.count > 0 {
                d.failed.ids = try ids("""
                    SELECT r.source_id FROM scan.rows r JOIN live.failures f ON f.source = r.source AND f.source_id = r.source_id
                    WHERE r.source = ? AND NOT EXISTS (SELECT 1 FROM temp.live_rows l WHERE l.source = r.source AND l.source_id = r.source_id)
                    """, name)
            }
            if d.changed.count > 0 {
                d.changed.ids = try ids("""
                    SELECT r.source_id FROM scan.rows r JOIN temp.live_rows l ON l.source = r.source AND l.source_id = r.source_id
                    WHERE r.source = ? AND l.row_hash != r.hash
                    """, name)
            }
            if d.attributesChanged.count > 0 {
                d.attributesChanged.ids = try ids("""
                    SELECT r.source_id FROM scan.rows r JOIN temp.live_rows l ON l.source = r.source AND l.source_id = r.source_id
                    WHERE r.source = ? AND l.row_hash = r.hash AND (\(moved))
                    """, name)
            }
            if d.removed.count > 0 {
                d.removed.ids = try ids("""
                    SELECT l.source_id FROM temp.live_rows l WHERE l.source = ? AND NOT EXISTS (
                      SELECT 1 FROM scan.rows r WHERE r.source = l.source AND r.source_id = l.source_id)
                    """, name)
            }
            diffs[name] = d
        }
        return ordered(diffs, sources)
    }

    /// The condition, on a staged row `r` and its live row `l`, that the
    /// attributes differ: another value (NULL included) in any of them, or a
    /// file that does not store exactly the job's attributes.
    static func attributesDiffer(_ attributes: [AttributeSpec]) -> String {
        (["l.attrs_known = 0"] + attributes.map { "l.\(StagingArea.column($0.name)) IS NOT r.\(StagingArea.column($0.name))" }).joined(separator: " OR ")
    }

    private static func ordered(_ diffs: [String: SourceDiff], _ sources: [String]) -> [SourceDiff] {
        let extra = diffs.keys.filter { !sources.contains($0) }.sorted()
        return (sources + extra).compactMap { diffs[$0] }
    }
}
