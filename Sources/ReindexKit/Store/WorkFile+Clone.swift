import Foundation
import GRDB

/// The clone path of the work file: a new file that starts as a kernel-side
/// copy of the live one (`FileClone`) and gets only the run's delta. Every
/// change to `items` on such a file is recorded in `work_delta` by temporary
/// triggers (they live on the connection, never in the file), in the same
/// transaction as the change, so a resumed run knows exactly what the
/// derived indexes still have to apply.
extension WorkFile {
    /// Creates the triggers that record the delta when the file is a clone
    /// (`work_state.base` set); returns whether it is one.
    static func recordDeltaIfCloned(_ db: Database) throws -> Bool {
        guard try String.fetchOne(db, sql: "SELECT value FROM main.work_state WHERE key = ?", arguments: [WorkStateKey.base.rawValue]) != nil else {
            return false
        }
        // Trigger bodies cannot qualify table names: `work_delta` resolves to main's.
        // An update keeps an `insert` as it is (the row is new either way) but is applied again.
        try db.execute(sql: """
            CREATE TEMP TRIGGER IF NOT EXISTS work_delta_insert AFTER INSERT ON main.items BEGIN
                INSERT OR REPLACE INTO work_delta(id, op, indexed) VALUES (new.id, 'insert', 0);
            END;
            CREATE TEMP TRIGGER IF NOT EXISTS work_delta_delete AFTER DELETE ON main.items BEGIN
                INSERT OR REPLACE INTO work_delta(id, op, indexed) VALUES (old.id, 'delete', 0);
            END;
            CREATE TEMP TRIGGER IF NOT EXISTS work_delta_update AFTER UPDATE ON main.items BEGIN
                INSERT INTO work_delta(id, op, indexed) VALUES (new.id, 'update', 0) ON CONFLICT(id) DO UPDATE SET indexed = 0;
            END;
            """)
        return true
    }

    /// Makes `workPath` a clone of the live file with this run's identity:
    /// copied to `OutputPaths.cloneFile` first, given its `work_state` (with
    /// `base`), then renamed, so a file at `workPath` is always either
    /// resumable as a clone or not a clone at all. The live file is only read.
    static func clone(live: String, to workPath: String, state: [WorkStateKey: String]) throws -> FileClone.Method {
        let tmp = OutputPaths.cloneFile(workPath)
        let method = try FileClone.copy(live, to: tmp)
        CrashPoint.reached("clone")
        do {
            let queue = try DatabaseQueue(path: tmp)
            try queue.write { db in
                try db.execute(sql: VectorFileFormat.workSchema)
                var values = state
                values[.base] = method.rawValue
                for (key, value) in values {
                    try db.execute(sql: "INSERT OR REPLACE INTO work_state(key, value) VALUES (?, ?)", arguments: [key.rawValue, value])
                }
            }
            try queue.close()
        } catch let error as DatabaseError {
            throw ReindexError.io(path: tmp, detail: "cannot prepare the clone of the live file: \(error.message ?? "\(error)") — free space or fix permissions, then rerun")
        }
        try FileOps.rename(tmp, workPath)
        return method
    }

    /// Why the live file (attached as `live`, already through `quick_check`)
    /// cannot be the base of a clone, or nil: its meta must count its items,
    /// it must hold no work table, and `vec_items` (counted through its
    /// shadow table, so without the extension) must hold every item.
    func cloneBaseProblem() throws -> String? {
        try queue.read { db in
            let schema = LiveFile.schema
            let meta = try VectorFileMeta.read(db, schema: schema)
            let items = try Int.fetchOne(db, sql: "SELECT count(*) FROM \(schema).items") ?? 0
            guard meta[.itemCount] == String(items) else {
                return "meta item_count is \(meta[.itemCount] ?? "missing"), the file has \(items) items"
            }
            let tables = try VectorFileCheck.tables(db, schema: schema)
            if let leftover = VectorFileFormat.workTables.first(where: tables.contains) {
                return "it holds the work table \(leftover)"
            }
            if tables.contains(VecIndex.table) {
                guard tables.contains(VecIndex.rowidsTable) else { return "vec_items has no \(VecIndex.rowidsTable) table" }
                let rows = try Int.fetchOne(db, sql: "SELECT count(*) FROM \(schema).\(VecIndex.rowidsTable)") ?? 0
                guard rows == items else { return "vec_items has \(rows) rows, items has \(items)" }
            }
            return nil
        }
    }

    /// A value of this file's own `meta` (a finished file being adopted).
    func metaValue(_ key: MetaKey) throws -> String? {
        try queue.read { db in try String.fetchOne(db, sql: "SELECT value FROM main.meta WHERE key = ?", arguments: [key.rawValue]) }
    }

    /// Failures recorded in this file (before a clone: only this run's, the
    /// rows over `max-row-bytes` found by the scan), to carry into the clone.
    func recordedFailures() throws -> [FailedItem] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT source, source_id, error FROM failures").map { FailedItem(source: $0[0], sourceID: $0[1], error: $0[2]) }
        }
    }

    /// Attaches the live file as `live` for `reuseChunks`, without the
    /// checks the plan already made this run (a second `quick_check` would
    /// read the whole file again).
    func attachLiveForClone(path: String) throws {
        let attributes = self.attributes
        try queue.writeWithoutTransaction { db in
            try LiveFile.attach(db, path: path)
            try LiveFile.createRowsView(db, format: VectorFileFormat.version, attributes: attributes)
        }
    }

    /// `reconcile` on a clone: the items of rows that changed or left the
    /// primary are deleted (the clone's share of the delta). When the clone
    /// was taken from the live file this run planned against (`base_run_id`
    /// is its `run_id`), only the rows the plan found changed or removed
    /// (`scan.diff`) and the rows this run wrote are looked at: neither file
    /// is compared again, and the clone's unchanged pages are never read
    /// (after a reflink they are not even in the page cache). Otherwise (an adopted
    /// file, a rollback in between) every item is compared. Returns the items
    /// an interrupted attempt of this run wrote and that still hold.
    func reconcileClone(liveRunID: String?) throws -> [String: Int] {
        if let base = try workState()[.baseRunID], base == liveRunID {
            try queue.write { db in
                try db.execute(sql: """
                    CREATE TEMP TABLE gone AS
                    SELECT source, source_id FROM scan.diff WHERE kind IN ('changed', 'removed')
                    UNION
                    SELECT m.source, m.source_id FROM main.work_delta d JOIN main.items m ON m.id = d.id
                    WHERE d.op = 'insert' AND NOT EXISTS (
                        SELECT 1 FROM scan.rows r WHERE r.source = m.source AND r.source_id = m.source_id AND r.hash = m.row_hash);
                    DELETE FROM main.items WHERE id IN (
                        SELECT m.id FROM temp.gone g JOIN main.items m ON m.source = g.source AND m.source_id = g.source_id
                        WHERE NOT EXISTS (SELECT 1 FROM scan.rows r WHERE r.source = m.source AND r.source_id = m.source_id AND r.hash = m.row_hash));
                    DELETE FROM work_copied WHERE NOT EXISTS (SELECT 1 FROM main.items i WHERE i.id = work_copied.id);
                    DROP TABLE temp.gone;
                    """)
            }
        } else {
            _ = try reconcile(dropCopied: false)
        }
        return try queue.read { db in
            try Self.countBySource(db, sql: "SELECT m.source, count(*) FROM work_delta d CROSS JOIN items m ON m.id = d.id WHERE d.op = 'insert' GROUP BY m.source")
        }
    }

    /// The rows whose attributes may differ from the scan's, on a clone taken
    /// from the live file this run planned against: rows the plan found
    /// moved (`scan.diff`), and rows this run wrote (`account` settles only
    /// these instead of comparing every item). nil otherwise.
    func attributeCandidates(liveRunID: String?) throws -> String? {
        guard isClone, !attributes.isEmpty, let base = try workState()[.baseRunID], base == liveRunID else { return nil }
        return """
            SELECT source, source_id FROM scan.diff WHERE kind = 'moved'
            UNION SELECT m.source, m.source_id FROM main.work_delta d JOIN main.items m ON m.id = d.id
            """
    }

    /// The staged rows the clone does not hold whole yet (`StagingArea`):
    /// from the plan's diff when this run just cloned
    /// the live file it planned against; else from the clone itself (a
    /// resumed clone may lack rows an earlier attempt deleted that have
    /// since changed back, or hold rows it embedded in part).
    func cloneRows(liveRunID: String?, resumed: Bool) throws -> CloneRows {
        if !resumed, let base = try workState()[.baseRunID], base == liveRunID { return StagingArea.changedInDiff }
        return StagingArea.notInClone
    }

    /// Items kept from the live file: the clone's own (never rewritten) and
    /// the chunks `reuseChunks` copied. Counted as every item less the ones
    /// this run embedded (few): the per-source count reads only the
    /// `(source, source_id, chunk)` index.
    func reusedInClone() throws -> [String: Int] {
        try queue.read { db in
            var kept = try Self.countBySource(db, sql: "SELECT source, count(*) FROM items GROUP BY source")
            let embedded = try Self.countBySource(db, sql: """
                SELECT m.source, count(*) FROM work_delta d CROSS JOIN items m ON m.id = d.id
                WHERE d.op = 'insert' AND d.id NOT IN (SELECT id FROM work_copied) GROUP BY m.source
                """)
            for (source, n) in embedded { kept[source, default: 0] -= n }
            return kept
        }
    }

    /// Item ids changed since the derived indexes last saw them, as SQL.
    static let pendingDelta = "SELECT id FROM main.work_delta WHERE indexed = 0"

    /// Runs `body` — each derived index applying `pendingDelta` — and marks
    /// the delta applied, in one transaction: a crash leaves it pending, so
    /// every index applies each change exactly once.
    func applyDelta<T>(_ body: (Database) throws -> T) throws -> T {
        try queue.write { db in
            let result = try body(db)
            try db.execute(sql: "UPDATE main.work_delta SET indexed = 1 WHERE indexed = 0")
            return result
        }
    }

    /// Marks the whole delta applied (after `vec_items` was rebuilt from `items`).
    func markDeltaApplied() throws {
        try queue.write { db in try db.execute(sql: "UPDATE main.work_delta SET indexed = 1 WHERE indexed = 0") }
    }

    /// Whether the file's keyword index is the one `settings` describe (`KeywordIndex.matches`).
    func keywordIndexMatches(_ settings: KeywordSettings?) throws -> Bool {
        try queue.read { db in try KeywordIndex.matches(db, settings: settings) }
    }

    /// Whether the file has `vec_items`.
    func hasVecIndex() throws -> Bool {
        try queue.read { db in try VecIndex.exists(db, schema: "main") }
    }

    /// Loads sqlite-vec into the work file's connection; returns `vec_version()`.
    func loadExtension(_ ext: SQLiteVecExtension) throws -> String {
        try queue.writeWithoutTransaction { db in try ext.load(into: db) }
    }

    /// The check in proportion to the change (docs/format.md, "Checks"):
    /// the small tables' structure, the counts, every chunk of a row this
    /// run wrote covering its text, every vector it wrote (shape, finite,
    /// unit), and `vec_items` holding exactly the written vectors and none
    /// of the deleted ids, with as many rows as `items`.
    func checkDelta(expected: Accounting, prefixLength: Int, attributes: [AttributeColumn] = []) throws {
        let d = dimensions
        try queue.read { db in
            for table in ["meta", "failures", "runs"] {
                let quick = try String.fetchAll(db, sql: "PRAGMA main.quick_check(\(table))")
                guard quick == ["ok"] else {
                    throw ReindexError.verification(detail: "quick_check(\(table)) of \(path) failed (got \(quick.prefix(3).joined(separator: "; "))) — the disk or filesystem may be failing; rerun with --restart")
                }
            }
            let counts = try Row.fetchOne(db, sql: "SELECT count(*), coalesce(sum(chunk = 0), 0) FROM main.items")!
            let (items, rows): (Int, Int) = (counts[0], counts[1])
            guard items == expected.items, rows == expected.rows else {
                throw ReindexError.verification(detail: "expected \(expected.items) items of \(expected.rows) rows, the file has \(items) of \(rows) — rerun with --restart; if it happens again, report it")
            }
            // CROSS JOIN: from the delta (few ids) into items; without statistics on `work_delta`
            // the planner walked all of items' index instead (0.15 s each at 1M).
            let written = "SELECT d.id FROM main.work_delta d CROSS JOIN main.items i ON i.id = d.id"
            let touched = "SELECT DISTINCT i.source, i.source_id FROM main.work_delta d CROSS JOIN main.items i ON i.id = d.id"
            let coverage = try VectorFileCheck.coverage(db, schema: "main", prefixLength: prefixLength, sample: 1, only: touched)
            if let first = coverage.gaps.ids.first {
                throw ReindexError.verification(detail: "chunks do not cover row \(first) — rerun with --restart; if it happens again, report it")
            }
            let vectors = try VectorFileCheck.vectors(db, schema: "main", dimensions: d, sample: 1, only: written)
            try Self.requireUnitVectors(vectors, dimensions: d)
            var problems: [String] = []
            if try VecIndex.exists(db, schema: "main") {
                problems += try VecIndex.checkDelta(db, items: items, delta: "SELECT id FROM main.work_delta", attributes: attributes)
            }
            if try KeywordIndex.exists(db, schema: "main") {
                problems += try KeywordIndex.checkDelta(db, items: items, delta: "SELECT id FROM main.work_delta", prefixLength: prefixLength)
            }
            guard problems.isEmpty else {
                throw ReindexError.verification(detail: "\(problems.joined(separator: "; ")) — rerun with --restart")
            }
        }
    }
}
