import Foundation
import GRDB

/// The published vector file as every reader opens it — plan, verify,
/// search, rollback, doctor: through a `mode=ro` URI, so opening it never
/// creates or changes anything beside it, attached as `live` to a private
/// connection or opened on its own.
public enum LiveFile {
    /// The schema name a live file is attached under.
    static let schema = "live"

    /// `file:` URI that opens read-only.
    static func uri(readOnly path: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "?#%")
        let encoded = path.addingPercentEncoding(withAllowedCharacters: allowed) ?? path
        return "file:\(encoded)?mode=ro"
    }

    /// Opens a vector file on its own, read-only.
    static func open(_ path: String) throws -> DatabaseQueue {
        var config = Configuration()
        config.readonly = true
        return try DatabaseQueue(path: uri(readOnly: path), configuration: config)
    }

    /// Attaches a vector file as `live` to `db`'s connection, read-only.
    static func attach(_ db: Database, path: String) throws {
        try db.execute(sql: "ATTACH DATABASE ? AS \(schema)", arguments: [uri(readOnly: path)])
    }

    static func detach(_ db: Database) {
        try? db.execute(sql: "DROP VIEW IF EXISTS temp.live_rows")
        try? db.execute(sql: "DETACH DATABASE \(schema)")
    }

    /// `temp.live_rows(source, source_id, row_hash, attrs_known, attr_<name>…)`:
    /// one row per source row of the attached file, whatever its version
    /// (`/1` stored one item per row, whose content hash is the row's hash;
    /// `/2` gives every chunk the row's hash and attributes, and every row
    /// has a chunk 0). `attrs_known` is 1 when the file stores exactly the
    /// job's attributes, so they can be compared value by value; otherwise
    /// every row's attributes count as changed. Without attributes a `/2`
    /// file with `items_rows` is read through it, the index the hash pass
    /// compares with: read once from disk, not twice through two indexes
    /// (0.7 s of a 0.1% run on a cold reflink clone at 1M messages).
    static func createRowsView(_ db: Database, format: String, attributes: [AttributeSpec]) throws {
        var known = attributes.isEmpty
        var values = attributes.map { "NULL AS \(StagingArea.column($0.name))" }
        if format == VectorFileFormat.version {
            let columns = Set(try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info('items', '\(schema)')"))
            let stored = AttributeColumn.decode(try String.fetchOne(db, sql: "SELECT value FROM \(schema).meta WHERE key = ?",
                                                                     arguments: [MetaKey.attributes.rawValue]))
            known = stored?.map(\.name) == attributes.map(\.name) && attributes.allSatisfy { columns.contains($0.name) }
            if known { values = attributes.map { "\($0.name) AS \(StagingArea.column($0.name))" } }
        }
        let extra = ([known ? "1 AS attrs_known" : "0 AS attrs_known"] + values).joined(separator: ", ")
        let hasRowsIndex = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM \(schema).sqlite_schema WHERE type = 'index' AND name = ?)",
                                             arguments: [VectorFileFormat.rowsIndex]) == true
        let covered = format == VectorFileFormat.version && attributes.isEmpty && hasRowsIndex
        let select = format == VectorFileFormat.previousVersion
            ? "SELECT source, source_id, content_hash AS row_hash, \(extra) FROM \(schema).items"
            : "SELECT source, source_id, row_hash, \(extra) FROM \(schema).items\(covered ? " INDEXED BY \(VectorFileFormat.rowsIndex)" : "") WHERE chunk = 0"
        try db.execute(sql: "DROP VIEW IF EXISTS temp.live_rows; CREATE TEMP VIEW live_rows AS \(select)")
    }

    /// What a reader should know before opening a file: nil when it is a
    /// rollback-journal SQLite database. Read from the header without opening
    /// it, because a read-only open of a WAL file creates `-shm`.
    public static func headerProblem(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "cannot read \(path) (permission denied or not a file) — check its permissions" }
        defer { try? handle.close() }
        let bytes = [UInt8](handle.readData(ofLength: 20))
        guard bytes.count == 20, bytes.starts(with: Array("SQLite format 3\0".utf8)) else {
            return "not an SQLite database (got a bad header) — rebuild it with `reindex --full`"
        }
        guard bytes[18] == 1, bytes[19] == 1 else {
            return "the file is in WAL mode (header bytes 18/19 = \(bytes[18])/\(bytes[19])); the contract is rollback-journal (DELETE) mode, readable on any filesystem — rebuild it with `reindex --full`"
        }
        return nil
    }

    /// Checks that the file attached as `live` is a base a run can reuse
    /// vectors from: intact, this format, this model and dimension. Anything
    /// else is a reason for a full rebuild, never a failure.
    ///
    /// `deep` decides, from the file's meta, whether "intact" means a
    /// `quick_check` of the whole file (every page: 3.2 GB at a million
    /// messages, the largest part of a no-change run) or of its small tables
    /// only. The file was checked whole before it was published and is never
    /// written after; runs check it whole on the full-check schedule, and a
    /// damaged page met by a lighter run makes that run a full rebuild too
    /// (`PlanStage`).
    /// `path`, when given, is read once ahead of a whole-file check (`FilePrefetch`).
    static func compatibility(_ db: Database, model: ModelConfig, attributes: [AttributeSpec], path: String? = nil,
                              deep: (VectorFileMeta) -> Bool = { _ in true }) throws -> LiveStatus {
        let tables = try String.fetchAll(db, sql: "SELECT name FROM \(schema).sqlite_schema WHERE type = 'table'")
        let meta = tables.contains("meta") ? try VectorFileMeta.read(db, schema: schema) : VectorFileMeta()
        let whole = deep(meta)
        let scope = whole ? ["quick_check(5)"] : ["meta", "failures", "runs"].filter(tables.contains).map { "quick_check(\($0))" }
        if whole, let path { FilePrefetch.sequential(path: path) }
        for pragma in scope {
            let check = try String.fetchAll(db, sql: "PRAGMA \(schema).\(pragma)")
            guard check == ["ok"] else {
                return .unusable(reason: "failed quick_check: \(check.prefix(2).joined(separator: "; "))")
            }
        }
        guard tables.contains("meta"), tables.contains("items") else {
            return .unusable(reason: "not a \(VectorFileFormat.version) file (no meta/items tables)")
        }
        guard let format = meta[.format], VectorFileFormat.readableVersions.contains(format) else {
            return .unusable(reason: "not a \(VectorFileFormat.version) file (format \(meta[.format] ?? "missing"))")
        }
        guard meta[.model] == model.name else {
            return .unusable(reason: "built with model \(meta[.model] ?? "?"), the job uses \(model.name)")
        }
        guard meta[.dimensions] == String(model.dimensions) else {
            return .unusable(reason: "built with \(meta[.dimensions] ?? "?") dimensions, the job declares \(model.dimensions)")
        }
        if format == VectorFileFormat.version {
            guard let chunking = ChunkSettings.decode(meta[.chunking]), chunking.matches(model) else {
                let was = ChunkSettings.decode(meta[.chunking]).map { "\($0.tokens)/\($0.overlapTokens)" } ?? "unknown"
                return .unusable(reason: "chunked with chunk-tokens/chunk-overlap \(was), the job uses \(model.chunkTokens)/\(ChunkSettings.overlapTokens(model))")
            }
            _ = try Row.fetchAll(db, sql: "SELECT id, source, source_id, chunk, span_start, span_end, row_hash, content_hash, embedding, embedded_at FROM \(schema).items LIMIT 0")
        } else {
            _ = try Row.fetchAll(db, sql: "SELECT id, source, source_id, content_hash, embedding, embedded_at FROM \(schema).items LIMIT 0")
        }
        _ = try Row.fetchAll(db, sql: "SELECT source, source_id, error, attempts, last_attempt_at FROM \(schema).failures LIMIT 0")
        try createRowsView(db, format: format, attributes: attributes)
        return .usable(meta: meta)
    }

    /// Attaches the live file to `queue` when it is a usable base; leaves it
    /// detached and says why otherwise.
    static func attachIfUsable(_ queue: DatabaseQueue, path: String, model: ModelConfig, attributes: [AttributeSpec],
                               deep: (VectorFileMeta) -> Bool = { _ in true }) -> LiveStatus {
        guard FileManager.default.fileExists(atPath: path) else { return .unusable(reason: "missing") }
        guard FileManager.default.isReadableFile(atPath: path) else { return .unusable(reason: "unreadable: permission denied") }
        let status: LiveStatus
        do {
            status = try queue.writeWithoutTransaction { db in
                try attach(db, path: path)
                return try compatibility(db, model: model, attributes: attributes, path: path, deep: deep)
            }
        } catch {
            status = .unusable(reason: "unreadable: \(describe(error))")
        }
        if status.meta == nil { queue.inDatabase { db in detach(db) } }
        return status
    }

    /// SQLite's own message, without GRDB's wrapping.
    static func describe(_ error: Error) -> String {
        if let e = error as? DatabaseError { return e.message ?? "\(e)" }
        return "\(error)"
    }

    /// The `run_id` of a published file, or nil when it cannot be read.
    static func runID(_ path: String) -> String? {
        guard let queue = try? open(path) else { return nil }
        defer { try? queue.close() }
        return try? queue.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [MetaKey.runID.rawValue]) }
    }
}
