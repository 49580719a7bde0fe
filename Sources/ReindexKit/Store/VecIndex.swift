import Foundation
import GRDB
import Logging

/// The sqlite-vec `vec0` index of a vector file: `vec_items(embedding
/// float[D] distance_metric=cosine)`, rowid = `items.id`.
///
/// A file built from nothing builds it from `items` (`build`, about 10,000
/// rows/s on this machine); a clone of the live file patches it with the
/// run's delta (`apply`). sqlite-vec 0.1 does not reclaim the slots of
/// deleted rows, so the clone path rebuilds it past a threshold of dead
/// slots (`IndexStage`, `meta.vec_dead_rows`). Readers without the
/// extension can still open the file and read every other table; only
/// statements that touch `vec_items` fail ("no such module: vec0").
public enum VecIndex {
    public static let table = "vec_items"
    /// vec0's shadow table of rowids: counted without the extension.
    static let rowidsTable = "vec_items_rowids"

    /// What a run will do about the index, decided once before any work.
    public struct Plan: Sendable {
        public var mode: JobConfig.IndexMode
        public var ext: SQLiteVecExtension?
        /// `vec_version()` of the extension, from its trial load.
        public var version: String? = nil
        /// The value of the `index` meta key the new file gets: `vec0` or `none`.
        public var wanted: String { mode != .none && ext != nil ? "vec0" : "none" }
    }

    /// What building the index left: a note for the summary and meta keys.
    public struct Built: Sendable {
        public var note: String?
        public var meta: [MetaKey: String]
    }

    /// Resolves `index:` against the extension's availability. `vec0` without
    /// the extension is a usage error (exit 64) raised before anything is
    /// created; `auto` carries on without the index and says so.
    public static func resolve(mode: JobConfig.IndexMode, explicitPath: String?, environment: [String: String], logger: Logger) async throws -> Plan {
        guard mode != .none else { return Plan(mode: mode, ext: nil) }
        var ext = try await locate(explicitPath: explicitPath, environment: environment)
        var version: String?
        if let found = ext {
            // Load it once into a scratch connection so a broken library fails now, not after the embedding.
            do {
                let scratch = try DatabaseQueue()
                version = try await scratch.writeWithoutTransaction { db in try found.load(into: db) }
                try scratch.close()
            } catch {
                if mode == .vec0 { throw error }
                logger.warning("sqlite-vec did not load; the vector file will have no vec_items index (index: auto)", metadata: ["error": "\(error)"])
                ext = nil
            }
        }
        if ext == nil {
            if mode == .vec0 {
                throw ReindexError.usage("index: vec0 needs the sqlite-vec extension, and none was found — pass --sqlite-vec PATH/vec0.so, set SQLITE_VEC_PATH, or run `make setup` (pip install sqlite-vec==0.1.9); use `index: auto` or `index: none` to publish without vec_items")
            }
            logger.notice("sqlite-vec not found or not loadable; the vector file will have no vec_items index (index: auto)",
                          metadata: ["hint": "pass --sqlite-vec, set SQLITE_VEC_PATH or pip install sqlite-vec"])
        } else {
            logger.info("sqlite-vec found", metadata: ["path": "\(ext!.path)", "from": "\(ext!.origin)"])
        }
        return Plan(mode: mode, ext: ext, version: ext == nil ? nil : version)
    }

    /// `SQLiteVecExtension.locate` off the cooperative pool (its Python
    /// fallback spawns a process and waits for it).
    public static func locate(explicitPath: String?, environment: [String: String]) async throws -> SQLiteVecExtension? {
        let found: Result<SQLiteVecExtension?, Error> = await withCheckedContinuation { done in
            DispatchQueue.global().async {
                done.resume(returning: Result { try SQLiteVecExtension.locate(explicit: explicitPath, environment: environment) })
            }
        }
        return try found.get()
    }

    /// Whether the live file's index is the one this run would build; a
    /// no-change run may only skip publishing when it is.
    public static func liveMatches(_ liveMeta: VectorFileMeta?, plan: Plan) -> Bool {
        (liveMeta?[.index] ?? "none") == plan.wanted
    }

    /// Drops any `vec_items` left in the work file and, when wanted, builds it
    /// anew from `items` in one transaction. Runs on the work file's connection.
    /// `crashPoint` is reached inside the transaction, before it commits
    /// (the compaction's kill -9 test).
    static func build(_ db: Database, dimensions d: Int, plan: Plan, attributes: [AttributeColumn] = [], crashPoint: String? = nil,
                      logger: Logger) throws -> Built {
        let started = ContinuousClock.now
        var version: String?
        if let ext = plan.ext {
            do {
                version = try ext.load(into: db)
            } catch let error as ReindexError where plan.mode == .auto {
                logger.warning("sqlite-vec did not load; publishing without vec_items (index: auto)", metadata: ["error": "\(error)"])
            }
        }
        var chunkSize: Int?
        try db.inTransaction {
            if try exists(db, schema: "main") {
                // Left by an earlier attempt of a resumed run.
                if version != nil {
                    try db.execute(sql: "DROP TABLE main.\(table)")
                } else {
                    try dropWithoutExtension(db)
                }
            }
            if version != nil {
                chunkSize = try Self.chunkSize(db, attributes: attributes)
                try db.execute(sql: createSQL(dimensions: d, attributes: attributes, chunkSize: chunkSize))
                let names = attributes.map { ", \($0.name)" }.joined()
                let values = attributes.map { ", \($0.vecValue)" }.joined()
                // Partition by partition: vec0 fills one partition's chunk at a time
                // (97,500 rows in 50 rooms: 2 s, against 15 s in id order).
                let order = (attributes.filter { $0.role == .partition }.map(\.vecValue) + ["i.id"]).joined(separator: ", ")
                try db.execute(sql: "INSERT INTO main.\(table)(rowid, embedding\(names)) SELECT i.id, i.embedding\(values) FROM main.items i ORDER BY \(order)")
            }
            if let crashPoint { CrashPoint.reached(crashPoint) }
            return .commit
        }
        guard let version else {
            let note = plan.mode == .none
                ? nil
                : "no vec_items index: sqlite-vec was not found or did not load (index: auto) — pass --sqlite-vec or set SQLITE_VEC_PATH"
            return Built(note: note, meta: [.index: "none"])
        }
        let rows = try Int.fetchOne(db, sql: "SELECT count(*) FROM main.items") ?? 0
        let seconds = (ContinuousClock.now - started).seconds
        logger.info("built vec_items", metadata: ["rows": "\(rows)", "seconds": "\(String(format: "%.2f", seconds))", "sqlite_vec": "\(version)"])
        var meta: [MetaKey: String] = [.index: "vec0", .sqliteVecVersion: version, .vecDeadRows: "0"]
        meta[.vecChunkSize] = chunkSize.map(String.init)
        return Built(note: String(format: "vec_items index built with sqlite-vec %@ (%d rows, %.2f s)", version, rows, seconds),
                       meta: meta)
    }

    /// Applies the work file's pending delta (`WorkFile.pendingDelta`) to
    /// `vec_items` in place, on a clone of the live file: every changed id is
    /// deleted and, when it is still an item, inserted again with its vector
    /// and attributes (vec0 cannot update a partition key in place). Deletes
    /// go one rowid at a time, the point lookup vec0 serves. Returns the rows
    /// deleted: slots sqlite-vec 0.1 never reuses (see `IndexStage`'s
    /// compaction). Runs inside `WorkFile.applyDelta`'s transaction, with the
    /// extension loaded.
    static func apply(_ db: Database, attributes: [AttributeColumn]) throws -> Int {
        let pending = try Int64.fetchAll(db, sql: WorkFile.pendingDelta)
        guard !pending.isEmpty else { return 0 }
        let present = try db.makeStatement(sql: "SELECT count(*) FROM main.\(rowidsTable) WHERE rowid = ?")
        let delete = try db.makeStatement(sql: "DELETE FROM main.\(table) WHERE rowid = ?")
        var deleted = 0
        for id in pending {
            guard try Int.fetchOne(present, arguments: [id]) == 1 else { continue }
            try delete.execute(arguments: [id])
            deleted += 1
        }
        let names = attributes.map { ", \($0.name)" }.joined()
        let values = attributes.map { ", \($0.vecValue)" }.joined()
        let order = (attributes.filter { $0.role == .partition }.map(\.vecValue) + ["i.id"]).joined(separator: ", ")
        try db.execute(sql: """
            INSERT INTO main.\(table)(rowid, embedding\(names)) SELECT i.id, i.embedding\(values) FROM main.items i
            WHERE i.id IN (\(WorkFile.pendingDelta)) ORDER BY \(order)
            """)
        return deleted
    }

    /// The clone path's check of `vec_items` (`WorkFile.checkDelta`): as many
    /// rows as `items` (counted in the shadow table), every id of `delta`
    /// that is an item holding the item's vector and attributes, and none of
    /// the deleted ones left. Needs the extension loaded.
    static func checkDelta(_ db: Database, items: Int, delta: String, attributes: [AttributeColumn] = []) throws -> [String] {
        var problems: [String] = []
        let rows = try Int.fetchOne(db, sql: "SELECT count(*) FROM main.\(rowidsTable)") ?? 0
        if rows != items { problems.append("vec_items has \(rows) rows, items has \(items)") }
        let same = (["v.embedding = i.embedding"] + attributes.map { "v.\($0.name) IS \($0.vecValue)" }).joined(separator: " AND ")
        let differing = try Int64.fetchAll(db, sql: """
            SELECT i.id FROM main.items i WHERE i.id IN (\(delta))
              AND NOT coalesce((SELECT \(same) FROM main.\(table) v WHERE v.rowid = i.id), 0)
            ORDER BY i.id LIMIT 5
            """)
        if !differing.isEmpty {
            problems.append("vec_items rows missing or differing from the item written by this run, ids: \(differing.map(String.init).joined(separator: ", "))")
        }
        let left = try Int64.fetchAll(db, sql: """
            SELECT r.rowid FROM main.\(rowidsTable) r WHERE r.rowid IN (\(delta))
              AND NOT EXISTS (SELECT 1 FROM main.items i WHERE i.id = r.rowid) ORDER BY r.rowid LIMIT 5
            """)
        if !left.isEmpty {
            problems.append("vec_items rowids deleted by this run are still there: \(left.map(String.init).joined(separator: ", "))")
        }
        return problems
    }

    /// `CREATE VIRTUAL TABLE vec_items USING vec0(…)`: the embedding, then
    /// each attribute by role (docs/format.md, "Attributes").
    static func createSQL(dimensions d: Int, attributes: [AttributeColumn], chunkSize: Int?) -> String {
        let columns = ["embedding float[\(d)] distance_metric=\(VectorFileFormat.distance)"] + attributes.map(\.vecDeclaration)
            + (chunkSize.map { ["chunk_size=\($0)"] } ?? [])
        return "CREATE VIRTUAL TABLE main.\(table) USING vec0(\(columns.joined(separator: ", ")))"
    }

    /// `vec0` gives every partition its own chunks of `chunk_size` vectors
    /// (1,024 by default), each allocated whole: 200 rooms of one row made a
    /// 302 MB file. With partition keys the size is chosen from the items'
    /// partitions: the largest power of two from 8 to 1,024 whose chunks,
    /// partially filled, leave at most a quarter of the slots empty; 8 when
    /// none does. Without partition keys: vec0's default (nil).
    static func chunkSize(_ db: Database, attributes: [AttributeColumn]) throws -> Int? {
        let keys = attributes.filter { $0.role == .partition }
        guard !keys.isEmpty else { return nil }
        let group = keys.map(\.vecValue).joined(separator: ", ")
        let sizes = try Int.fetchAll(db, sql: "SELECT count(*) FROM main.items i GROUP BY \(group)")
        return chunkSize(partitionSizes: sizes)
    }

    /// The rule of `chunkSize(_:attributes:)` on the items per partition.
    static func chunkSize(partitionSizes sizes: [Int]) -> Int {
        let items = sizes.reduce(0, +)
        var size = 1024
        while size > 8 {
            let slots = sizes.reduce(0) { $0 + ($1 + size - 1) / size * size }
            if slots * 4 <= items * 5 { return size }
            size /= 2
        }
        return 8
    }

    static func exists(_ db: Database, schema: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT count(*) > 0 FROM \(schema).sqlite_schema WHERE name = 'vec_items'") ?? false
    }

    /// Removes `vec_items` and its shadow tables when the module is not
    /// loaded (`DROP TABLE` would need it): the virtual table's schema row is
    /// deleted, the schema reloaded, and the shadow tables, which are plain
    /// tables, dropped. Runs inside the caller's transaction.
    static func dropWithoutExtension(_ db: Database) throws {
        try db.execute(sql: """
            PRAGMA writable_schema = ON;
            DELETE FROM main.sqlite_schema WHERE type = 'table' AND name = 'vec_items';
            PRAGMA writable_schema = RESET;
            """)
        let shadows = try String.fetchAll(db, sql: #"SELECT name FROM main.sqlite_schema WHERE type = 'table' AND name LIKE 'vec\_items\_%' ESCAPE '\'"#)
        for name in shadows {
            try db.execute(sql: "DROP TABLE main.\(name.quotedDatabaseIdentifier)")
        }
    }

    /// Checks `vec_items` in `schema` against `items` there: the same row
    /// count, no rowid without an item, and `sample` random rows holding the
    /// item's exact vector. Needs the extension loaded; returns the problems.
    public static func check(_ db: Database, schema: String, sample: Int, attributes: [AttributeColumn] = []) throws -> [String] {
        var problems: [String] = []
        let items = try Int.fetchOne(db, sql: "SELECT count(*) FROM \(schema).items") ?? 0
        let rows = try Int.fetchOne(db, sql: "SELECT count(*) FROM \(schema).vec_items") ?? 0
        if rows != items {
            problems.append("vec_items has \(rows) rows, items has \(items)")
        }
        let orphans = try Int.fetchAll(db, sql: """
            SELECT v.rowid FROM \(schema).vec_items v
            WHERE NOT EXISTS (SELECT 1 FROM \(schema).items i WHERE i.id = v.rowid) ORDER BY v.rowid LIMIT 5
            """)
        if !orphans.isEmpty {
            problems.append("vec_items rowids with no item: \(orphans.map(String.init).joined(separator: ", "))")
        }
        // Random ids picked through the primary key, not `ORDER BY random()`,
        // which would read every vector of the file.
        var picked = Set<Int64>()
        if let range = try Row.fetchOne(db, sql: "SELECT min(id), max(id) FROM \(schema).items"),
           let low: Int64 = range[0], let high: Int64 = range[1] {
            let next = try db.makeStatement(sql: "SELECT id FROM \(schema).items WHERE id >= ? ORDER BY id LIMIT 1")
            for _ in 0..<sample {
                if let id = try Int64.fetchOne(next, arguments: [Int64.random(in: low...high)]) { picked.insert(id) }
            }
        }
        var differing: [Int64] = []
        // The item's vector and, for each attribute, its value as `vec_items` stores it.
        let same = (["v.embedding = i.embedding"] + attributes.map { "v.\($0.name) IS \($0.vecValue)" }).joined(separator: " AND ")
        let compare = try db.makeStatement(sql: """
            SELECT NOT coalesce((SELECT \(same) FROM \(schema).vec_items v WHERE v.rowid = i.id), 0)
            FROM \(schema).items i WHERE i.id = ?
            """)
        for id in picked.sorted() where try Bool.fetchOne(compare, arguments: [id]) == true {
            differing.append(id)
        }
        if !differing.isEmpty {
            problems.append("\(differing.count) of \(picked.count) sampled vec_items rows are missing or differ from the item's vector or attributes, ids: \(differing.prefix(5).map(String.init).joined(separator: ", "))")
        }
        return problems
    }
}
