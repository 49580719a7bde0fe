import Foundation
import GRDB

/// What a run would do for one source.
public struct SourcePlan: Sendable, Equatable {
    public var name: String
    public var scanned = 0
    public var skipped = 0
    public var truncated = 0
    public var unchanged = 0
    public var added = 0
    public var changed = 0
    public var removed = 0
    /// Characters of model input to embed (for the token estimate).
    public var charsToEmbed = 0
    public var samples: [String: [String]] = ["added": [], "changed": [], "removed": []]
    public var eligible: Int { scanned - skipped }
}

/// The current vector file as a base for reuse, or why it cannot be one.
public enum LiveStatus: Sendable, Equatable {
    case usable(meta: [String: String])
    case unusable(reason: String)

    public var meta: [String: String]? {
        if case .usable(let m) = self { return m }
        return nil
    }
    public var reason: String? {
        if case .unusable(let r) = self { return r }
        return nil
    }
}

/// Compares staged rows with the live vector file in SQL: unchanged, added,
/// changed, removed. The live file is attached read-only; anything wrong with
/// it (missing, unreadable, corrupt, another format or model) makes the run a
/// full rebuild with the reason reported, never a failure.
public enum Planner {
    /// Attaches the live file as `live` when it is a compatible base.
    public static func attachLive(_ queue: DatabaseQueue, path: String, model: ModelConfig) -> LiveStatus {
        guard FileManager.default.fileExists(atPath: path) else { return .unusable(reason: "missing") }
        guard FileManager.default.isReadableFile(atPath: path) else { return .unusable(reason: "unreadable: permission denied") }
        do {
            try attachReadOnly(queue, path: path)
        } catch {
            return .unusable(reason: "unreadable: \(describe(error))")
        }
        let status: LiveStatus
        do {
            status = try queue.writeWithoutTransaction { db -> LiveStatus in
                let check = try String.fetchAll(db, sql: "PRAGMA live.quick_check(5)")
                guard check == ["ok"] else {
                    return .unusable(reason: "failed quick_check: \(check.prefix(2).joined(separator: "; "))")
                }
                let tables = try String.fetchAll(db, sql: "SELECT name FROM live.sqlite_schema WHERE type = 'table'")
                guard tables.contains("meta"), tables.contains("items") else {
                    return .unusable(reason: "not a \(VectorStore.format) file (no meta/items tables)")
                }
                var meta: [String: String] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT key, value FROM live.meta") { meta[row[0]] = row[1] }
                guard meta["format"] == VectorStore.format else {
                    return .unusable(reason: "not a \(VectorStore.format) file (format \(meta["format"] ?? "missing"))")
                }
                guard meta["model"] == model.name else {
                    return .unusable(reason: "built with model \(meta["model"] ?? "?"), the job uses \(model.name)")
                }
                guard meta["dimensions"] == String(model.dimensions) else {
                    return .unusable(reason: "built with \(meta["dimensions"] ?? "?") dimensions, the job declares \(model.dimensions)")
                }
                _ = try Row.fetchAll(db, sql: "SELECT id, source, source_id, content_hash, embedding, embedded_at FROM live.items LIMIT 0")
                _ = try Row.fetchAll(db, sql: "SELECT source, source_id, error, attempts, last_attempt_at FROM live.failures LIMIT 0")
                return .usable(meta: meta)
            }
        } catch {
            status = .unusable(reason: "unreadable: \(describe(error))")
        }
        if status.meta == nil { detachLive(queue) }
        return status
    }

    /// Attaches a vector file as `live` through a read-only URI: nothing is created or changed.
    static func attachReadOnly(_ queue: DatabaseQueue, path: String) throws {
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "ATTACH DATABASE ? AS live", arguments: [uri(readOnly: path)])
        }
    }

    public static func detachLive(_ queue: DatabaseQueue) {
        try? queue.writeWithoutTransaction { db in try db.execute(sql: "DETACH DATABASE live") }
    }

    static func describe(_ error: Error) -> String {
        if let e = error as? DatabaseError { return e.message ?? "\(e)" }
        return "\(error)"
    }

    /// `file:` URI that opens read-only, so attaching never writes or creates anything.
    static func uri(readOnly path: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "?#%")
        let encoded = path.addingPercentEncoding(withAllowedCharacters: allowed) ?? path
        return "file:\(encoded)?mode=ro"
    }

    /// Diff counts per source against `live` (when attached) and samples of ids.
    public static func diff(_ queue: DatabaseQueue, sources: [String], scans: [String: ScanCounts], liveAttached: Bool) throws -> [SourcePlan] {
        try queue.read { db in
            var plans: [String: SourcePlan] = [:]
            for name in sources {
                var p = SourcePlan(name: name)
                p.scanned = scans[name]?.scanned ?? 0
                p.skipped = scans[name]?.skipped ?? 0
                p.truncated = scans[name]?.truncated ?? 0
                plans[name] = p
            }
            if liveAttached {
                for row in try Row.fetchAll(db, sql: """
                    SELECT r.source,
                           coalesce(sum(l.content_hash = r.hash), 0),
                           coalesce(sum(l.content_hash != r.hash), 0),
                           coalesce(sum(l.id IS NULL), 0),
                           coalesce(sum(CASE WHEN l.id IS NULL OR l.content_hash != r.hash THEN length(r.input) END), 0)
                    FROM scan.rows r LEFT JOIN live.items l ON l.source = r.source AND l.source_id = r.source_id
                    GROUP BY r.source
                    """) {
                    let name: String = row[0]
                    plans[name, default: SourcePlan(name: name)].unchanged = row[1]
                    plans[name, default: SourcePlan(name: name)].changed = row[2]
                    plans[name, default: SourcePlan(name: name)].added = row[3]
                    plans[name, default: SourcePlan(name: name)].charsToEmbed = row[4]
                }
                for row in try Row.fetchAll(db, sql: """
                    SELECT l.source, count(*) FROM live.items l
                    WHERE NOT EXISTS (SELECT 1 FROM scan.rows r WHERE r.source = l.source AND r.source_id = l.source_id)
                    GROUP BY l.source
                    """) {
                    let name: String = row[0]
                    plans[name, default: SourcePlan(name: name)].removed = row[1]
                }
                for name in plans.keys {
                    plans[name]!.samples["added"] = try String.fetchAll(db, sql: """
                        SELECT r.source_id FROM scan.rows r WHERE r.source = ? AND NOT EXISTS (
                          SELECT 1 FROM live.items l WHERE l.source = r.source AND l.source_id = r.source_id)
                        ORDER BY r.source_id LIMIT 10
                        """, arguments: [name])
                    plans[name]!.samples["changed"] = try String.fetchAll(db, sql: """
                        SELECT r.source_id FROM scan.rows r JOIN live.items l ON l.source = r.source AND l.source_id = r.source_id
                        WHERE r.source = ? AND l.content_hash != r.hash ORDER BY r.source_id LIMIT 10
                        """, arguments: [name])
                    plans[name]!.samples["removed"] = try String.fetchAll(db, sql: """
                        SELECT l.source_id FROM live.items l WHERE l.source = ? AND NOT EXISTS (
                          SELECT 1 FROM scan.rows r WHERE r.source = l.source AND r.source_id = l.source_id)
                        ORDER BY l.source_id LIMIT 10
                        """, arguments: [name])
                }
            } else {
                for row in try Row.fetchAll(db, sql: "SELECT source, count(*), coalesce(sum(length(input)), 0) FROM scan.rows GROUP BY source") {
                    let name: String = row[0]
                    plans[name, default: SourcePlan(name: name)].added = row[1]
                    plans[name, default: SourcePlan(name: name)].charsToEmbed = row[2]
                }
                for name in plans.keys {
                    plans[name]!.samples["added"] = try String.fetchAll(db, sql: "SELECT source_id FROM scan.rows WHERE source = ? ORDER BY source_id LIMIT 10", arguments: [name])
                }
            }
            // Job order first, then sources only the old file has.
            let extra = plans.keys.filter { !sources.contains($0) }.sorted()
            return (sources + extra).compactMap { plans[$0] }
        }
    }
}
