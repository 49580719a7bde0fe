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
    /// The job's attributes: columns of `items` and of the staged rows.
    public let attributes: [AttributeSpec]
    /// The staging database's file (`OutputPaths.scanFile`), nil for an anonymous one.
    let scanPath: String?
    /// Whether this file started as a clone of the live file (`work_state`
    /// `base`): every change to `items` is then recorded in `work_delta`, from
    /// which the derived indexes are maintained (WorkFile+Clone.swift).
    public let isClone: Bool
    let queue: DatabaseQueue

    /// Opens or creates a work file. `wal` selects WAL for the build: each
    /// batch commits without an fsync yet survives `kill -9`; it is only used
    /// on local filesystems and the file is switched back to DELETE before
    /// publishing. `scanPath` names the staging file (kept when the work file
    /// is reopened on a clone); nil stages into an anonymous database.
    public init(path: String, dimensions: Int, wal: Bool, attributes: [AttributeSpec] = [], scanPath: String? = nil) throws {
        self.path = path
        self.dimensions = dimensions
        self.wal = wal
        self.attributes = attributes
        self.scanPath = scanPath
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
                // Before WAL and the first table: afterwards SQLite ignores them.
                try db.execute(sql: "PRAGMA main.page_size = \(VectorFileFormat.pageSize)")
                try db.execute(sql: "PRAGMA main.auto_vacuum = \(VectorFileFormat.autoVacuum)")
                if wal {
                    try db.execute(sql: "PRAGMA journal_mode = WAL")
                    try db.execute(sql: "PRAGMA synchronous = NORMAL")
                } else {
                    try db.execute(sql: "PRAGMA journal_mode = DELETE")
                    try db.execute(sql: "PRAGMA synchronous = FULL")
                }
                try db.execute(sql: VectorFileFormat.tables(attributes: attributes))
                try db.execute(sql: VectorFileFormat.workSchema)
                if let scanPath { try FilePermissions.prepareDerived(scanPath) }
                try StagingArea.attach(db, attributes: attributes, path: scanPath ?? "")
            }
            isClone = try queue.writeWithoutTransaction { db in try Self.recordDeltaIfCloned(db) }
            // A clone of a file from before `items_rows` gets it now, once.
            if isClone { try ensureRowsIndex() }
        } catch let error as DatabaseError {
            throw ReindexError.io(path: path, detail: "cannot create the work file: \(error.message ?? "\(error)") — check the directory's permissions and free space")
        }
    }

    /// Closes the file and removes the staging file, unless `keepScan` (the
    /// work file is about to be reopened on a clone).
    public func close(keepScan: Bool = false) {
        try? queue.close()
        if !keepScan, let scanPath { FileOps.remove(scanPath) }
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
        let attributes = self.attributes
        try await queue.write { db in try StagingArea.stage(db, source: source, rows: rows, attributes: attributes) }
        // A row over max-row-bytes is staged empty (never chunked) and is a failure of this run.
        let oversized = rows.compactMap { r in r.oversizedBytes.map { FailedItem(source: source, sourceID: r.sourceID,
            error: "the row's text is \($0) bytes, over max-row-bytes — it was not loaded; raise max-row-bytes in the job file or shorten the row") } }
        if !oversized.isEmpty { try await write(items: [], failures: oversized) }
    }

    /// Stages one page of a `changed-column` scan's id pass.
    func stage(source: String, ids: [FlaggedID]) async throws {
        try await queue.write { db in try StagingArea.stage(db, source: source, ids: ids) }
    }

    /// Finds the ids of the id pass whose rows a `changed-column` run reads
    /// (`StagingArea.collectIDsToRead`); `idsToRead` pages through them.
    func collectIDsToRead(source: String) throws {
        try queue.writeWithoutTransaction { db in try StagingArea.collectIDsToRead(db, source: source) }
    }

    /// Finds the ids of the hash pass whose rows a run reads in full
    /// (`StagingArea.collectChangedHashes`); `idsToRead` pages through them.
    func collectChangedHashes(source: String) throws {
        let attributes = self.attributes
        try queue.writeWithoutTransaction { db in try StagingArea.collectChangedHashes(db, source: source, attributes: attributes) }
    }

    /// Forgets the unhashed ids once read (`StagingArea.dropUnhashedIDs`).
    func dropUnhashedIDs(source: String) throws {
        try queue.writeWithoutTransaction { db in try StagingArea.dropUnhashedIDs(db, source: source) }
    }

    /// The next ids `collectIDsToRead` or `collectChangedHashes` found (`StagingArea.idsToRead`).
    func idsToRead(source: String, after: String, limit: Int) throws -> [(id: String, raw: DatabaseValue)] {
        try queue.read { db in try StagingArea.idsToRead(db, source: source, after: after, limit: limit) }
    }

    /// Empties the staged scan, and the failures it recorded, to read every row again.
    func clearScan() throws {
        try queue.write { db in
            try StagingArea.clear(db)
            try db.execute(sql: "DELETE FROM main.failures")
        }
    }

    /// Per source read whole with flags (`ScanFilter.allFlagging`): the
    /// rows the plan found new, changed or moved whose `changed-column` was
    /// still below the live file's watermark — changes the column missed.
    func missedByChangedColumn(sources: Set<String>) throws -> [String: Int] {
        guard !sources.isEmpty else { return [:] }
        return try queue.read { db in
            var out = Dictionary(uniqueKeysWithValues: sources.map { ($0, 0) })
            for row in try Row.fetchAll(db, sql: """
                SELECT d.source, count(*) FROM scan.diff d JOIN scan.rows r ON r.source = d.source AND r.source_id = d.source_id
                WHERE d.kind IN ('new', 'changed', 'moved') AND r.flagged = 0 GROUP BY d.source
                """) where sources.contains(row[0]) {
                out[row[0]] = row[1]
            }
            return out
        }
    }

    /// The attributes' types from the staged values (`AttributeColumn.resolve`);
    /// `base`, the live file's, joins them when only the changed rows were staged.
    func attributeColumns(base: [AttributeColumn]? = nil) throws -> [AttributeColumn] {
        try queue.read { db in
            // A conflict with the base's type is for the whole scan to settle (the plan reads every row then).
            guard let base else { return try AttributeColumn.resolve(attributes, db) }
            if let joined = try? AttributeColumn.resolve(attributes, db, base: base) { return joined }
            return try AttributeColumn.resolve(attributes, db)
        }
    }

    /// Attaches the live file as `live` when it is a compatible base.
    func attachLive(path: String, model: ModelConfig, deep: (VectorFileMeta) -> Bool = { _ in true }) -> LiveStatus {
        LiveFile.attachIfUsable(queue, path: path, model: model, attributes: attributes, deep: deep)
    }

    func detachLive() {
        queue.inDatabase { db in LiveFile.detach(db) }
    }

    func diff(sources: [String], liveAttached: Bool, sample: Int) throws -> [SourceDiff] {
        // A write: the diff is kept in `scan.diff`.
        try queue.write { db in try SourceDiff.compute(db, sources: sources, attributes: attributes, liveAttached: liveAttached, sample: sample) }
    }

    /// Rows the live file records as failed (a run retries them, so it is not a no-change run).
    func liveFailureCount() throws -> Int {
        try queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM live.failures") ?? 0 }
    }

    // MARK: Resume and reuse

    /// Drops work items whose row changed or vanished since they were embedded,
    /// and (for a full run) the ones copied from the old file. Returns how many
    /// items are carried over, per source.
    public func reconcile(dropCopied: Bool) throws -> [String: Int] {
        try queue.write { db in
            if dropCopied {
                try db.execute(sql: "DELETE FROM items WHERE id IN (SELECT id FROM work_copied); DELETE FROM work_copied")
            }
            try db.execute(sql: """
                DELETE FROM items WHERE NOT EXISTS (
                    SELECT 1 FROM scan.rows r
                    WHERE r.source = items.source AND r.source_id = items.source_id AND r.hash = items.row_hash)
                """)
            try db.execute(sql: "DELETE FROM work_copied WHERE NOT EXISTS (SELECT 1 FROM main.items i WHERE i.id = work_copied.id)")
            return try Self.countBySource(db, sql: "SELECT source, count(*) FROM items GROUP BY source")
        }
    }

    /// Copies every chunk of the rows the live file holds whole (see
    /// `reusableWhole`), keeping their ids (the rowids an application may
    /// cache) when free, and the live file's failures of rows still staged
    /// (a row that already failed in this run adds the live file's attempts;
    /// one copied by an interrupted attempt of this run does not again).
    /// Two inserts, ids that are free first: one `INSERT … SELECT CASE WHEN
    /// EXISTS(id)` evaluates every EXISTS before inserting, so a row given a
    /// new id could take a later row's (found by the torture test).
    /// Returns the items copied from the live file so far, per source.
    ///
    /// The copy is one transaction in rollback-journal mode: pages appended
    /// to the file are not journaled, whereas WAL would write every copied
    /// page twice (WAL, then checkpoint) — ~30% of an incremental run.
    /// Crash-safe all the same: a killed copy leaves a hot journal that SQLite
    /// rolls back on the next open, and the next open switches back to WAL.
    func reuseWholeRows(liveFormat: String, chunking: ChunkSettings, prefixLength: Int) throws -> [String: Int] {
        try withRollbackJournal {
            try queue.write { db in
                let whole = StagingArea.reusableWhole(liveFormat: liveFormat, size: chunking.size, prefixLength: prefixLength)
                // Attributes come from the staged row, never from the live file: a moved row costs no embedding.
                let (names, values) = (attributeNames, stagedAttributes)
                let columns = liveFormat == VectorFileFormat.version
                    ? "l.chunk, l.span_start, l.span_end, l.row_hash"
                    : "0, 0, length(r.input) - \(prefixLength), l.content_hash"
                // A row the live file holds whole may have a few chunks embedded by an interrupted
                // full attempt that this incremental run resumes: the live file's chunks replace them
                // (found by the torture test: a partial row failed the coverage check).
                try db.execute(sql: """
                    DELETE FROM main.items WHERE id NOT IN (SELECT id FROM work_copied) AND EXISTS (
                        SELECT 1 FROM scan.rows r WHERE r.source = items.source AND r.source_id = items.source_id AND \(whole))
                    """)
                try db.execute(sql: """
                    CREATE TEMP TABLE reuse AS
                    SELECT l.rowid AS lid FROM scan.rows r JOIN live.items l ON l.source = r.source AND l.source_id = r.source_id
                    WHERE \(whole) AND length(l.embedding) = ? AND NOT EXISTS (
                        SELECT 1 FROM main.items m WHERE m.source = r.source AND m.source_id = r.source_id);
                    INSERT INTO main.items(id, source, source_id, chunk, span_start, span_end, row_hash, content_hash, embedding, embedded_at\(names))
                    SELECT l.id, l.source, l.source_id, \(columns), l.content_hash, l.embedding, l.embedded_at\(values)
                    FROM live.items l JOIN scan.rows r ON r.source = l.source AND r.source_id = l.source_id
                    WHERE l.rowid IN (SELECT lid FROM temp.reuse) AND NOT EXISTS (SELECT 1 FROM main.items m WHERE m.id = l.id)
                    ORDER BY l.id;
                    INSERT INTO main.items(source, source_id, chunk, span_start, span_end, row_hash, content_hash, embedding, embedded_at\(names))
                    SELECT l.source, l.source_id, \(columns), l.content_hash, l.embedding, l.embedded_at\(values)
                    FROM live.items l JOIN scan.rows r ON r.source = l.source AND r.source_id = l.source_id
                    WHERE l.rowid IN (SELECT lid FROM temp.reuse) AND NOT EXISTS (
                        SELECT 1 FROM main.items m WHERE m.source = l.source AND m.source_id = l.source_id AND m.chunk = \(liveFormat == VectorFileFormat.version ? "l.chunk" : "0"))
                    ORDER BY l.id;
                    INSERT OR IGNORE INTO work_copied(id)
                    SELECT m.id FROM temp.reuse t JOIN live.items l ON l.rowid = t.lid JOIN main.items m ON m.source = l.source AND m.source_id = l.source_id;
                    INSERT INTO main.failures(source, source_id, error, attempts, last_attempt_at)
                    SELECT f.source, f.source_id, f.error, f.attempts, f.last_attempt_at FROM live.failures f
                    WHERE EXISTS (SELECT 1 FROM scan.rows r WHERE r.source = f.source AND r.source_id = f.source_id)
                    ON CONFLICT(source, source_id) DO UPDATE SET attempts = main.failures.attempts + excluded.attempts
                    WHERE main.failures.last_attempt_at >= (SELECT CAST(value AS INTEGER) FROM work_state WHERE key = 'started_at');
                    DROP TABLE temp.reuse;
                    """, arguments: [VectorFileFormat.embeddingBytes(dimensions: dimensions)])
            }
        }
        return try reusedBySource()
    }

    /// Staged rows that must be chunked (every row of a full run; the new,
    /// changed and re-chunked rows of an incremental one), after `rowid`.
    /// `clone`: the clone path's rows (`WorkFile.cloneRows`).
    func stageSingleChunkRows(liveFormat: String?, chunking: ChunkSettings, prefixLength: Int, clone: CloneRows? = nil) throws {
        try queue.write { db in
            try StagingArea.stageSingleChunkRows(db, liveFormat: liveFormat, chunking: chunking, prefixLength: prefixLength, clone: clone)
        }
    }

    func rowsToChunk(after rowid: Int64, limit: Int, liveFormat: String?, chunking: ChunkSettings, prefixLength: Int,
                     clone: CloneRows? = nil) throws -> [(rowid: Int64, source: String, row: ScannedRow)] {
        try queue.read { db in
            try StagingArea.rowsToChunk(db, after: rowid, limit: limit, liveFormat: liveFormat, chunking: chunking, prefixLength: prefixLength, clone: clone)
        }
    }

    func stage(chunks: [PendingChunk]) throws {
        try queue.write { db in try StagingArea.stage(db, chunks: chunks) }
    }

    /// Copies, for the chunked rows, every chunk whose text the live file
    /// already embedded in the same row (by content hash, wherever it sat):
    /// an edit re-embeds only the chunks it changed.
    func reuseChunks() throws -> [String: Int] {
        try withRollbackJournal {
            try queue.write { db in
                let (names, values) = (attributeNames, stagedAttributes)
                try db.execute(sql: """
                    CREATE TEMP TABLE reuse AS
                    SELECT c.source AS source, c.source_id AS source_id, c.chunk AS chunk, (
                        SELECT l.rowid FROM live.items l WHERE l.source = c.source AND l.source_id = c.source_id
                          AND l.content_hash = c.hash AND length(l.embedding) = ? LIMIT 1) AS lid
                    FROM scan.chunks c WHERE NOT EXISTS (
                        SELECT 1 FROM main.items m WHERE m.source = c.source AND m.source_id = c.source_id AND m.chunk = c.chunk);
                    DELETE FROM temp.reuse WHERE lid IS NULL;
                    INSERT INTO main.items(source, source_id, chunk, span_start, span_end, row_hash, content_hash, embedding, embedded_at\(names))
                    SELECT c.source, c.source_id, c.chunk, c.span_start, c.span_end, r.hash, c.hash, l.embedding, l.embedded_at\(values)
                    FROM temp.reuse t
                    JOIN scan.chunks c ON c.source = t.source AND c.source_id = t.source_id AND c.chunk = t.chunk
                    JOIN scan.rows r ON r.source = c.source AND r.source_id = c.source_id
                    JOIN live.items l ON l.rowid = t.lid;
                    INSERT OR IGNORE INTO work_copied(id)
                    SELECT m.id FROM temp.reuse t JOIN main.items m ON m.source = t.source AND m.source_id = t.source_id AND m.chunk = t.chunk;
                    DROP TABLE temp.reuse;
                    """, arguments: [VectorFileFormat.embeddingBytes(dimensions: dimensions)])
            }
        }
        return try reusedBySource()
    }

    /// `, a, b` and `, r.attr_a, r.attr_b`: the attribute columns of an
    /// `INSERT INTO items` and their values from the staged row `r`.
    private var attributeNames: String { attributes.map { ", \($0.name)" }.joined() }
    private var stagedAttributes: String { attributes.map { ", r.\(StagingArea.column($0.name))" }.joined() }

    /// Items copied from the live file, per source.
    public func reusedBySource() throws -> [String: Int] {
        try queue.read { db in
            try Self.countBySource(db, sql: "SELECT m.source, count(*) FROM items m JOIN work_copied c ON c.id = m.id GROUP BY m.source")
        }
    }

    /// Runs a bulk copy in rollback-journal mode (see `reuseWholeRows`).
    private func withRollbackJournal<T>(_ body: () throws -> T) throws -> T {
        if wal { try setMainJournal("DELETE") }
        let result: T
        do {
            result = try body()
        } catch {
            if wal { try? setMainJournal("WAL") }
            throw error
        }
        if wal { try setMainJournal("WAL") }
        return result
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

    /// Chunks still to embed, in staging order, after `rowid`.
    public func pendingChunks(after rowid: Int64, limit: Int, prefixLength: Int) async throws -> [(rowid: Int64, chunk: PendingChunk)] {
        try await queue.read { db in
            let rows = try Row.fetchCursor(db, sql: """
                SELECT c.rowid, c.source, c.source_id, c.chunk, c.span_start, c.span_end, r.hash, c.hash, c.input
                FROM scan.chunks c JOIN scan.rows r ON r.source = c.source AND r.source_id = c.source_id
                WHERE c.rowid > ? AND NOT EXISTS (
                    SELECT 1 FROM main.items i WHERE i.source = c.source AND i.source_id = c.source_id AND i.chunk = c.chunk)
                ORDER BY c.rowid LIMIT ?
                """, arguments: [rowid, limit])
            var out: [(rowid: Int64, chunk: PendingChunk)] = []
            while let r = try rows.next() {
                out.append((r[0], PendingChunk(source: r[1], sourceID: r[2], chunk: r[3], start: r[4], end: r[5],
                                               rowHash: r[6], hash: r[7], input: r[8], prefixLength: prefixLength)))
            }
            return out
        }
    }

    /// Chunks still to embed and their characters of model input.
    public func pendingCount() throws -> (chunks: Int, chars: Int) {
        try queue.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT count(*), coalesce(sum(length(c.input)), 0) FROM scan.chunks c WHERE NOT EXISTS (
                    SELECT 1 FROM main.items i WHERE i.source = c.source AND i.source_id = c.source_id AND i.chunk = c.chunk)
                """)!
            return (row[0], row[1])
        }
    }

    /// Commits one batch: its vectors and failures in one transaction, so each
    /// committed batch is a checkpoint a resumed run starts from.
    public func write(items: [EmbeddedItem], failures: [FailedItem]) async throws {
        let now = Int64(Date().timeIntervalSince1970)
        let expected = VectorFileFormat.embeddingBytes(dimensions: dimensions)
        let (names, values) = (attributeNames, stagedAttributes)
        let updates = attributes.map { ", \($0.name) = excluded.\($0.name)" }.joined()
        // With attributes, each item takes its row's from the staged row (one lookup by primary key).
        let source = attributes.isEmpty
            ? "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            : "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?\(values) FROM scan.rows r WHERE r.source = ? AND r.source_id = ?"
        try await queue.write { db in
            if !items.isEmpty {
                let insert = try db.cachedStatement(sql: """
                    INSERT INTO items(source, source_id, chunk, span_start, span_end, row_hash, content_hash, embedding, embedded_at\(names))
                    \(source)
                    ON CONFLICT(source, source_id, chunk) DO UPDATE SET span_start = excluded.span_start, span_end = excluded.span_end,
                        row_hash = excluded.row_hash, content_hash = excluded.content_hash,
                        embedding = excluded.embedding, embedded_at = excluded.embedded_at\(updates)
                    """)
                for item in items {
                    precondition(item.embedding.count == expected)
                    var arguments: StatementArguments = [item.source, item.sourceID, item.chunk, item.spanStart, item.spanEnd,
                                                         item.rowHash, item.hash, item.embedding, now]
                    if !self.attributes.isEmpty { arguments += [item.source, item.sourceID] }
                    try insert.execute(arguments: arguments)
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
    /// In rollback-journal mode, like `reuseWholeRows`: the index is one
    /// transaction of pages appended to the file, which WAL would write twice
    /// and hold whole in the -wal file until the checkpoint.
    func buildIndex(_ plan: VecIndex.Plan, attributes: [AttributeColumn] = [], crashPoint: String? = nil, logger: Logger) throws -> VecIndex.Built {
        try withRollbackJournal {
            try queue.writeWithoutTransaction { db in
                try VecIndex.build(db, dimensions: dimensions, plan: plan, attributes: attributes, crashPoint: crashPoint, logger: logger)
            }
        }
    }

    /// Builds `keywords` from `items` and the staged rows (see `KeywordIndex.build`),
    /// in rollback-journal mode for the same reason as `buildIndex`; without
    /// `settings` it only drops an index left there, in the current mode.
    /// Creates the published indexes (`VectorFileFormat.indexes`) when the
    /// file lacks them, in one transaction of appended pages
    /// (`withRollbackJournal`): a build once its items are written, a clone of
    /// a file from before `items_rows` when it is opened.
    func ensureRowsIndex() throws {
        let present = try queue.read { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM main.sqlite_schema WHERE type = 'index' AND name = ?)",
                              arguments: [VectorFileFormat.rowsIndex]) ?? false
        }
        guard !present else { return }
        try withRollbackJournal { try queue.writeWithoutTransaction { db in try db.execute(sql: VectorFileFormat.indexes) } }
    }

    func buildKeywords(_ settings: KeywordSettings?, prefixLength: Int, logger: Logger) throws -> String? {
        let build = { try self.queue.writeWithoutTransaction { db in try KeywordIndex.build(db, settings: settings, prefixLength: prefixLength, logger: logger) } }
        return settings == nil ? try build() : try withRollbackJournal(build)
    }

    // MARK: Verify

    /// What the new file holds once failed rows are settled.
    struct Accounting {
        /// Rows with every chunk embedded or copied.
        var rows: Int
        /// Items (chunks) of those rows.
        var items: Int
        /// Staged rows neither complete nor failed (must be 0).
        var unaccounted: Int
        var failures: [FailedItem]
        var itemsBySource: [String: Int]
        var rowsBySource: [String: Int]
    }

    /// Settles failures (a row is complete — every staged chunk has an item,
    /// or it was copied whole — or it is failed and keeps no item), drops
    /// rows that are gone, and numbers the pieces of split chunks in order.
    /// `candidates` (the clone path): SQL of the `(source, source_id)` rows
    /// whose attributes may have moved; every item is compared without.
    func account(candidates: String? = nil) throws -> Accounting {
        try queue.write { db in
            try Self.settleAttributes(db, attributes, candidates: candidates)
            // Rows with a staged chunk that has no item: failed (or unaccounted). Usually none, so
            // everything below touches few rows; items only hold staged rows (see `reconcile`).
            try db.execute(sql: """
                CREATE TEMP TABLE incomplete AS
                SELECT DISTINCT c.source AS source, c.source_id AS source_id FROM scan.chunks c
                WHERE NOT EXISTS (SELECT 1 FROM main.items i WHERE i.source = c.source AND i.source_id = c.source_id AND i.chunk = c.chunk);
                DELETE FROM items WHERE id IN (
                    SELECT i.id FROM temp.incomplete k JOIN main.items i ON i.source = k.source AND i.source_id = k.source_id);
                DELETE FROM failures WHERE NOT EXISTS (SELECT 1 FROM scan.rows r WHERE r.source = failures.source AND r.source_id = failures.source_id)
                   OR EXISTS (SELECT 1 FROM main.items i WHERE i.source = failures.source AND i.source_id = failures.source_id);
                DELETE FROM work_copied WHERE NOT EXISTS (SELECT 1 FROM main.items i WHERE i.id = work_copied.id);
                """)
            try Self.renumberSplitChunks(db, onlyWritten: isClone)
            let failures = try Row.fetchAll(db, sql: "SELECT source, source_id, error FROM failures ORDER BY source, source_id").map {
                FailedItem(source: $0[0], sourceID: $0[1], error: $0[2])
            }
            // A build stages every row: a merge of sorted indexes (`SourceDiff.materialize`). A clone
            // staged the changed rows: a probe each, where the merge read all of items' index (0.1 s at 1M).
            let unaccounted = try Int.fetchOne(db, sql: isClone ? """
                SELECT count(*) FROM scan.rows r
                WHERE NOT EXISTS (SELECT 1 FROM main.items i WHERE i.source = r.source AND i.source_id = r.source_id)
                  AND NOT EXISTS (SELECT 1 FROM main.failures f WHERE f.source = r.source AND f.source_id = r.source_id)
                """ : """
                SELECT count(*) FROM (
                    SELECT source, source_id FROM scan.rows
                    EXCEPT SELECT source, source_id FROM main.items
                    EXCEPT SELECT source, source_id FROM main.failures
                    ORDER BY 1, 2)
                """) ?? 0
            // Items and rows per source in one pass over the (source, source_id, chunk) index.
            var itemsBySource: [String: Int] = [:], rowsBySource: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT source, count(*), coalesce(sum(chunk = 0), 0) FROM items GROUP BY source") {
                itemsBySource[row[0]] = row[1]
                rowsBySource[row[0]] = row[2]
            }
            let accounting = Accounting(
                rows: rowsBySource.values.reduce(0, +),
                items: itemsBySource.values.reduce(0, +),
                unaccounted: unaccounted, failures: failures,
                itemsBySource: itemsBySource,
                rowsBySource: rowsBySource)
            try db.execute(sql: "DROP TABLE temp.incomplete")
            return accounting
        }
    }

    /// Gives every item its row's current attributes from the staged rows:
    /// items carried over from an interrupted run may hold older values.
    /// Only differing items are written.
    private static func settleAttributes(_ db: Database, _ attributes: [AttributeSpec], candidates: String? = nil) throws {
        guard !attributes.isEmpty else { return }
        let set = attributes.map { "\($0.name) = r.\(StagingArea.column($0.name))" }.joined(separator: ", ")
        let differ = attributes.map { "main.items.\($0.name) IS NOT r.\(StagingArea.column($0.name))" }.joined(separator: " OR ")
        let only = candidates.map {
            " AND main.items.id IN (SELECT m.id FROM (\($0)) c JOIN main.items m ON m.source = c.source AND m.source_id = c.source_id)"
        } ?? ""
        try db.execute(sql: """
            UPDATE main.items SET \(set) FROM scan.rows r
            WHERE r.source = main.items.source AND r.source_id = main.items.source_id AND (\(differ))\(only)
            """)
    }

    /// The pieces of a chunk the server found too long were stored with
    /// numbers from `PendingChunk.splitBase`; each such row gets dense chunk
    /// numbers in span order (two passes through negative numbers, so the
    /// unique key holds at every step). `onlyWritten` (a clone): only the
    /// items this run wrote (`work_delta`) are looked at; the rest came
    /// numbered from a published file, and reading them all meant reading
    /// every vector page of the clone.
    ///
    /// Both passes touch only the split rows' items: the second one once
    /// went through `WHERE chunk < 0` over the whole table, which read every
    /// page of `items` (2.2 GB at 1M messages) on every run that wrote any.
    private static func renumberSplitChunks(_ db: Database, onlyWritten: Bool) throws {
        let items = onlyWritten ? "main.work_delta d CROSS JOIN main.items m ON m.id = d.id AND d.op = 'insert'" : "main.items m"
        try db.execute(sql: """
            CREATE TEMP TABLE split_items AS
            SELECT i.id AS id, row_number() OVER (PARTITION BY i.source, i.source_id ORDER BY i.span_start, i.span_end) - 1 AS rank
            FROM (SELECT DISTINCT m.source, m.source_id FROM \(items) WHERE m.chunk >= \(PendingChunk.splitBase)) s
            CROSS JOIN main.items i ON i.source = s.source AND i.source_id = s.source_id;
            UPDATE main.items SET chunk = -1 - x.rank FROM temp.split_items x WHERE main.items.id = x.id;
            UPDATE main.items SET chunk = -1 - chunk WHERE id IN (SELECT id FROM temp.split_items);
            DROP TABLE temp.split_items;
            """)
    }

    /// Checks the file before it may replace anything: quick_check, every
    /// row's chunks covering its text, every vector's shape and norm, and
    /// `vec_items` against `items`.
    func check(expected: Accounting, prefixLength: Int) throws {
        let d = dimensions
        // A clone (the periodic full check) may be cold, a reflink always is; a build was just written.
        if isClone { FilePrefetch.sequential(path: path) }
        // A write transaction only because FTS5's integrity check is an INSERT; it changes nothing.
        try queue.write { db in
            let quick = try VectorFileCheck.quickCheck(db, schema: "main")
            guard quick == ["ok"] else {
                throw ReindexError.verification(detail: "quick_check of \(path) failed (got \(quick.joined(separator: "; "))) — the disk or filesystem may be failing; rerun with --restart")
            }
            let coverage = try VectorFileCheck.coverage(db, schema: "main", prefixLength: prefixLength, sample: 1)
            guard coverage.rows == expected.rows, coverage.gaps.count == 0 else {
                throw ReindexError.verification(detail: "expected \(expected.rows) complete rows, the file has \(coverage.rows)\(coverage.gaps.ids.first.map { "; chunks do not cover row \($0)" } ?? "") — rerun with --restart; if it happens again, report it")
            }
            let vectors = try VectorFileCheck.vectors(db, schema: "main", dimensions: d, sample: 1)
            guard vectors.count == expected.items else {
                throw ReindexError.verification(detail: "expected \(expected.items) items, the file has \(vectors.count) — rerun with --restart; if it happens again, report it")
            }
            try Self.requireUnitVectors(vectors, dimensions: d)
            var problems: [String] = []
            if try VecIndex.exists(db, schema: "main") {
                problems += try VecIndex.check(db, schema: "main", sample: 64)
            }
            if try KeywordIndex.exists(db, schema: "main") {
                problems += try KeywordIndex.check(db, schema: "main", stagedPrefixLength: prefixLength)
            }
            guard problems.isEmpty else {
                throw ReindexError.verification(detail: "\(problems.joined(separator: "; ")) — rerun with --restart")
            }
        }
    }

    /// Fails the check when an item's vector has the wrong shape or is not a finite unit vector.
    static func requireUnitVectors(_ vectors: VectorFileCheck.Vectors, dimensions d: Int) throws {
        guard vectors.wrongShape.count == 0 else {
            throw ReindexError.verification(detail: "\(vectors.wrongShape.count) items do not have \(d) float32 dimensions (got e.g. \(vectors.wrongShape.ids.joined())) — rerun with --restart")
        }
        if let first = vectors.notUnit.ids.first {
            throw ReindexError.verification(detail: "item \(first) is not a finite unit vector — rerun with --restart")
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
                // The run that built this file only (a clone holds the live file's rows).
                try db.execute(sql: "DELETE FROM runs WHERE run_id != ?", arguments: [run.runID])
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

    static func countBySource(_ db: Database, sql: String) throws -> [String: Int] {
        var out: [String: Int] = [:]
        for row in try Row.fetchAll(db, sql: sql) { out[row[0]] = row[1] }
        return out
    }
}
