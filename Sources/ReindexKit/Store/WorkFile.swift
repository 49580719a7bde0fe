import Foundation
import GRDB
import Logging

/// The vector file under construction, the job's single writer and its
/// checkpoint. It holds the published tables plus the private work tables,
/// dropped before publishing; `scan` (the staged rows) and, when usable, the
/// live file (`live`, read-only) are attached to the same connection so the
/// plan, the reuse and the checks are set-based SQL. Every statement on the
/// work file is in this type; its connection never leaves it.
public final class WorkFile: Sendable {
    public let path: String
    public let dimensions: Int
    /// Whether the build runs in WAL mode (see `init`).
    public let wal: Bool
    private let queue: DatabaseQueue

    /// Opens or creates a work file. `wal` selects WAL for the build: each
    /// batch commits without an fsync yet survives `kill -9`; it is only used
    /// on local filesystems and the file is switched back to DELETE before
    /// publishing.
    public init(path: String, dimensions: Int, wal: Bool) throws {
        self.path = path
        self.dimensions = dimensions
        self.wal = wal
        var config = Configuration()
        config.label = "vectors"
        config.busyMode = .timeout(5)
        config.prepareDatabase { db in
            // The work file is private and derived: fast deletes over forensic zeroing.
            try db.execute(sql: "PRAGMA secure_delete = OFF")
            // 8 MB: writes append and lookups follow key order, so a bigger cache
            // bought no speed at 100k rows and only raised peak RSS (32 MB
            // here + 16 MB staging filled up to ~137 MB; docs/performance.md).
            try db.execute(sql: "PRAGMA cache_size = -8000")
        }
        // Issue 18: created no more readable than the primary before SQLite opens it (its sidecars follow).
        try FilePermissions.prepareDerived(path)
        do {
            queue = try DatabaseQueue(path: path, configuration: config)
            try queue.writeWithoutTransaction { db in
                // Before WAL and the first table: afterwards SQLite ignores it.
                try db.execute(sql: "PRAGMA main.page_size = \(VectorFileFormat.pageSize)")
                if wal {
                    try db.execute(sql: "PRAGMA journal_mode = WAL")
                    try db.execute(sql: "PRAGMA synchronous = NORMAL")
                } else {
                    try db.execute(sql: "PRAGMA journal_mode = DELETE")
                    try db.execute(sql: "PRAGMA synchronous = FULL")
                }
                try db.execute(sql: VectorFileFormat.schema)
                try db.execute(sql: VectorFileFormat.workSchema)
                try StagingArea.attach(db)
            }
        } catch let error as DatabaseError {
            throw ReindexError.io(path: path, detail: "cannot create the work file: \(error.message ?? "\(error)") — check the directory's permissions and free space")
        }
    }

    public func close() {
        try? queue.close()
    }

    // MARK: Checkpoint identity

    func workState() throws -> [WorkStateKey: String] {
        try queue.read { db in
            var out: [WorkStateKey: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT key, value FROM work_state") {
                if let key = WorkStateKey(rawValue: row[0]) { out[key] = row[1] }
            }
            return out
        }
    }

    func setWorkState(_ values: [WorkStateKey: String]) throws {
        try queue.write { db in
            for (k, v) in values {
                try db.execute(sql: "INSERT INTO work_state(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", arguments: [k.rawValue, v])
            }
        }
    }

    /// What a finished but unpublished file says about itself: its fingerprint,
    /// the mode of the run that finished it and how many items it holds.
    func finishedIdentity() throws -> (fingerprint: String?, mode: String?, items: Int) {
        try queue.read { db in
            let fp = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [MetaKey.sourceFingerprint.rawValue])
            let mode = try String.fetchOne(db, sql: "SELECT r.mode FROM runs r JOIN meta m ON m.key = ? AND m.value = r.run_id",
                                           arguments: [MetaKey.runID.rawValue])
            return (fp, mode, try Int.fetchOne(db, sql: "SELECT count(*) FROM items") ?? 0)
        }
    }

    public func itemCount() throws -> Int {
        try queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM items") ?? 0 }
    }

    // MARK: Staging and plan

    public func stage(source: String, rows: [ScannedRow]) async throws {
        try await queue.write { db in try StagingArea.stage(db, source: source, rows: rows) }
    }

    /// Attaches the live file as `live` when it is a compatible base.
    func attachLive(path: String, model: ModelConfig) -> LiveStatus {
        LiveFile.attachIfUsable(queue, path: path, model: model)
    }

    func detachLive() {
        queue.inDatabase { db in LiveFile.detach(db) }
    }

    func diff(sources: [String], liveAttached: Bool, sample: Int) throws -> [SourceDiff] {
        try queue.read { db in try SourceDiff.compute(db, sources: sources, liveAttached: liveAttached, sample: sample) }
    }

    /// Rows the live file records as failed (a run retries them, so it is not a no-change run).
    func liveFailureCount() throws -> Int {
        try queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM live.failures") ?? 0 }
    }

    // MARK: Resume and reuse

    /// Drops work items whose row changed or vanished since they were embedded,
    /// and (for a full run) the ones copied from the old file. Returns how many
    /// embedded items are carried over, per source.
    public func reconcile(dropCopied: Bool) throws -> [String: Int] {
        try queue.write { db in
            if dropCopied {
                try db.execute(sql: "DELETE FROM items WHERE id IN (SELECT id FROM work_copied); DELETE FROM work_copied")
            }
            try db.execute(sql: """
                DELETE FROM items WHERE NOT EXISTS (
                    SELECT 1 FROM scan.rows r
                    WHERE r.source = items.source AND r.source_id = items.source_id AND r.hash = items.content_hash)
                """)
            try db.execute(sql: "DELETE FROM work_copied WHERE id NOT IN (SELECT id FROM items)")
            return try Self.countBySource(db, sql: "SELECT source, count(*) FROM items GROUP BY source")
        }
    }

    /// Copies unchanged vectors from the live file in set-based SQL, keeping
    /// their ids (the rowids an application may cache) when free. Returns the
    /// items copied so far in this work file (this call's and an interrupted
    /// attempt's), per source.
    ///
    /// The copy is one transaction in rollback-journal mode: pages appended
    /// to the file are not journaled, whereas WAL would write every copied
    /// page twice (WAL, then checkpoint) — ~30% of an incremental run.
    /// Crash-safe all the same: a killed copy leaves a hot journal that SQLite
    /// rolls back on the next open, and the next open switches back to WAL.
    public func reuseFromLive() throws -> [String: Int] {
        if wal { try setMainJournal("DELETE") }
        do {
            try copyFromLive()
        } catch {
            if wal { try? setMainJournal("WAL") }
            throw error
        }
        if wal { try setMainJournal("WAL") }
        return try reusedBySource()
    }

    /// Items copied from the live file, per source.
    public func reusedBySource() throws -> [String: Int] {
        try queue.read { db in
            try Self.countBySource(db, sql: "SELECT m.source, count(*) FROM items m JOIN work_copied c ON c.id = m.id GROUP BY m.source")
        }
    }

    private func copyFromLive() throws {
        try queue.write { db in
            try db.execute(sql: """
                CREATE TEMP TABLE reuse AS
                SELECT l.rowid AS lid, l.source AS source, l.source_id AS source_id FROM live.items l
                JOIN scan.rows r ON r.source = l.source AND r.source_id = l.source_id AND r.hash = l.content_hash
                WHERE length(l.embedding) = ? AND NOT EXISTS (
                    SELECT 1 FROM main.items m WHERE m.source = l.source AND m.source_id = l.source_id);
                INSERT INTO main.items(id, source, source_id, content_hash, embedding, embedded_at)
                SELECT CASE WHEN EXISTS (SELECT 1 FROM main.items m WHERE m.id = l.id) THEN NULL ELSE l.id END,
                       l.source, l.source_id, l.content_hash, l.embedding, l.embedded_at
                FROM live.items l WHERE l.rowid IN (SELECT lid FROM temp.reuse) ORDER BY l.id;
                INSERT OR IGNORE INTO work_copied(id)
                SELECT m.id FROM temp.reuse t JOIN main.items m ON m.source = t.source AND m.source_id = t.source_id;
                INSERT OR IGNORE INTO main.failures SELECT f.* FROM live.failures f
                WHERE EXISTS (SELECT 1 FROM scan.rows r WHERE r.source = f.source AND r.source_id = f.source_id);
                DROP TABLE temp.reuse;
                """, arguments: [VectorFileFormat.embeddingBytes(dimensions: dimensions)])
        }
    }

    private func setMainJournal(_ mode: String) throws {
        try queue.writeWithoutTransaction { db in
            // `main.` only: the staging and live databases keep their own modes.
            let now = try String.fetchOne(db, sql: "PRAGMA main.journal_mode = \(mode)")
            guard now?.uppercased() == mode else {
                throw ReindexError.io(path: path, detail: "could not switch the work file to \(mode) journal mode (got \(now ?? "nil")) — the filesystem may not support it; try --work-dir on a local disk")
            }
        }
    }

    // MARK: Embedding

    /// Rows still to embed, in staging order, after `rowid`.
    public func pendingRows(after rowid: Int64, limit: Int) async throws -> [(rowid: Int64, source: String, row: ScannedRow)] {
        try await queue.read { db in
            let rows = try Row.fetchCursor(db, sql: """
                SELECT r.rowid, r.source, r.source_id, r.hash, r.input, r.truncated FROM scan.rows r
                WHERE r.rowid > ? AND NOT EXISTS (
                    SELECT 1 FROM main.items i WHERE i.source = r.source AND i.source_id = r.source_id)
                ORDER BY r.rowid LIMIT ?
                """, arguments: [rowid, limit])
            var out: [(rowid: Int64, source: String, row: ScannedRow)] = []
            while let r = try rows.next() {
                out.append((r[0], r[1], ScannedRow(sourceID: r[2], hash: r[3], input: r[4], truncated: r[5])))
            }
            return out
        }
    }

    /// Rows still to embed and their characters of model input.
    public func pendingCount() throws -> (rows: Int, chars: Int) {
        try queue.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT count(*), coalesce(sum(length(r.input)), 0) FROM scan.rows r WHERE NOT EXISTS (
                    SELECT 1 FROM main.items i WHERE i.source = r.source AND i.source_id = r.source_id)
                """)!
            return (row[0], row[1])
        }
    }

    /// Commits one batch: its vectors and failures in one transaction, so each
    /// committed batch is a checkpoint a resumed run starts from.
    public func write(items: [EmbeddedItem], failures: [FailedItem]) async throws {
        let now = Int64(Date().timeIntervalSince1970)
        let expected = VectorFileFormat.embeddingBytes(dimensions: dimensions)
        try await queue.write { db in
            if !items.isEmpty {
                let insert = try db.cachedStatement(sql: """
                    INSERT INTO items(source, source_id, content_hash, embedding, embedded_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT(source, source_id) DO UPDATE SET content_hash = excluded.content_hash,
                        embedding = excluded.embedding, embedded_at = excluded.embedded_at
                    """)
                for item in items {
                    precondition(item.embedding.count == expected)
                    try insert.execute(arguments: [item.source, item.sourceID, item.hash, item.embedding, now])
                }
            }
            if !failures.isEmpty {
                let record = try db.cachedStatement(sql: """
                    INSERT INTO failures(source, source_id, error, attempts, last_attempt_at) VALUES (?, ?, ?, 1, ?)
                    ON CONFLICT(source, source_id) DO UPDATE SET error = excluded.error,
                        attempts = failures.attempts + 1, last_attempt_at = excluded.last_attempt_at
                    """)
                for f in failures {
                    try record.execute(arguments: [f.source, f.sourceID, String(f.error.prefix(1000)), now])
                }
            }
        }
    }

    // MARK: Index

    /// Builds `vec_items` from `items` as the plan says (see `VecIndex.build`).
    func buildIndex(_ plan: VecIndex.Plan, logger: Logger) throws -> VecIndex.Built {
        try queue.writeWithoutTransaction { db in try VecIndex.build(db, dimensions: dimensions, plan: plan, logger: logger) }
    }

    // MARK: Verify

    /// What the new file must hold, after dropping failures of rows that are
    /// gone or embedded now.
    struct Accounting {
        /// Staged rows minus failed ones: the items the file must have.
        var expectedItems: Int
        /// Staged rows neither embedded nor failed (must be 0).
        var unaccounted: Int
        var failures: [FailedItem]
        var itemsBySource: [String: Int]
    }

    func account() throws -> Accounting {
        try queue.write { db in
            try db.execute(sql: """
                DELETE FROM failures WHERE NOT EXISTS (SELECT 1 FROM scan.rows r WHERE r.source = failures.source AND r.source_id = failures.source_id)
                   OR EXISTS (SELECT 1 FROM items i WHERE i.source = failures.source AND i.source_id = failures.source_id)
                """)
            let failures = try Row.fetchAll(db, sql: "SELECT source, source_id, error FROM failures ORDER BY source, source_id").map {
                FailedItem(source: $0[0], sourceID: $0[1], error: $0[2])
            }
            return Accounting(expectedItems: try StagingArea.count(db) - failures.count,
                              unaccounted: try StagingArea.unaccounted(db),
                              failures: failures,
                              itemsBySource: try Self.countBySource(db, sql: "SELECT source, count(*) FROM items GROUP BY source"))
        }
    }

    /// Checks the file before it may replace anything: quick_check, the item
    /// count, every vector's shape and norm, and `vec_items` against `items`.
    func check(expectedItems: Int) throws {
        let d = dimensions
        try queue.read { db in
            let quick = try VectorFileCheck.quickCheck(db, schema: "main")
            guard quick == ["ok"] else {
                throw ReindexError.verification(detail: "quick_check of \(path) failed (got \(quick.joined(separator: "; "))) — the disk or filesystem may be failing; rerun with --restart")
            }
            let vectors = try VectorFileCheck.vectors(db, schema: "main", dimensions: d, sample: 1)
            guard vectors.count == expectedItems else {
                throw ReindexError.verification(detail: "expected \(expectedItems) items (rows scanned − skipped − failed), the file has \(vectors.count) — rerun with --restart; if it happens again, report it")
            }
            guard vectors.wrongShape.count == 0 else {
                throw ReindexError.verification(detail: "\(vectors.wrongShape.count) items do not have \(d) float32 dimensions (got e.g. \(vectors.wrongShape.ids.joined())) — rerun with --restart")
            }
            if let first = vectors.notUnit.ids.first {
                throw ReindexError.verification(detail: "item \(first) is not a finite unit vector — rerun with --restart")
            }
            if try VecIndex.exists(db, schema: "main") {
                let problems = try VecIndex.check(db, schema: "main", sample: 64)
                guard problems.isEmpty else {
                    throw ReindexError.verification(detail: "\(problems.joined(separator: "; ")) — rerun with --restart")
                }
            }
        }
    }

    // MARK: Finalize

    /// Writes meta and the run record, drops the work tables and leaves the
    /// file closed, in DELETE journal mode, with no sidecar, fsynced.
    func finalize(meta: VectorFileMeta, run: RunRecord) throws {
        do {
            try queue.write { db in
                try meta.write(db)
                try db.execute(sql: """
                    INSERT OR REPLACE INTO runs(run_id, mode, full_reason, started_at, finished_at, scanned, skipped, embedded,
                        reused, removed, failed, requests, duration_s, items_per_s)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [run.runID, run.mode, run.fullReason, run.startedAt, run.finishedAt,
                                     run.scanned, run.skipped, run.embedded, run.reused, run.removed, run.failed,
                                     run.requests, run.durationSeconds, run.itemsPerSecond])
                for table in VectorFileFormat.workTables {
                    try db.execute(sql: "DROP TABLE IF EXISTS \(table)")
                }
            }
            try queue.writeWithoutTransaction { db in
                for name in try String.fetchAll(db, sql: "SELECT name FROM pragma_database_list WHERE name NOT IN ('main', 'temp')") {
                    try db.execute(sql: "DETACH DATABASE \(name.quotedDatabaseIdentifier)")
                }
                try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
                let mode = try String.fetchOne(db, sql: "PRAGMA journal_mode = DELETE")
                guard mode?.lowercased() == "delete" else {
                    throw ReindexError.verification(detail: "could not switch the new file to DELETE journal mode (got \(mode ?? "nil")) — the filesystem may not support it; try --work-dir on a local disk")
                }
            }
            try queue.close()
        } catch let error as DatabaseError {
            throw ReindexError.io(path: path, detail: "finishing the new file failed: \(error.message ?? "\(error)") — free space or fix permissions, then rerun the same command to resume")
        }
        let left = OutputPaths.sidecars(of: path)
        guard left.isEmpty else {
            throw ReindexError.verification(detail: "sidecar files remain after closing the new file (got \(left.joined(separator: ", "))) — another process may have the work file open; stop it and rerun")
        }
        try FileOps.fsyncFile(path)
    }

    private static func countBySource(_ db: Database, sql: String) throws -> [String: Int] {
        var out: [String: Int] = [:]
        for row in try Row.fetchAll(db, sql: sql) { out[row[0]] = row[1] }
        return out
    }
}
