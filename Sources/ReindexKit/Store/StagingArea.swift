import Foundation
import GRDB

/// `scan.rows`: the source rows of one scan, staged where SQL can compare
/// them with a vector file. Runs stage on the work file's connection into
/// `<work>-scan` (`OutputPaths.scanFile`: a file, so it survives reopening
/// the work file on a clone of the live file; removed when the run ends,
/// and by the next run after a crash); dry runs and `verify` into an
/// anonymous database (SQLite deletes it on close, even after a crash) on a
/// private in-memory connection, so they create nothing beside the output.
enum StagingArea {
    /// The staged column of an attribute, in `scan.rows` and `temp.live_rows`
    /// (prefixed: an attribute may be named like a staging column).
    static func column(_ attribute: String) -> String { "attr_\(attribute)" }

    /// The staging tables of a job: `scan.rows` has one column per attribute
    /// (`attr_<name>`, untyped: each value as the query returned it) and
    /// `flagged` (`ScannedRow.flagged`); `scan.ids` holds every id of the
    /// sources a run read in part, of which only the rows that changed are in
    /// `scan.rows`: the id pass of a `changed-column` scan, or the hash pass
    /// (`SourceScanner.stageHashes`), which also stages each row's hash and
    /// attributes (NULL hash: a row it left to the scan in Swift).
    static func schema(attributes: [AttributeSpec]) -> String {
        let columns = attributes.map { column($0.name) + ",\n    " }.joined()
        return """
        CREATE TABLE IF NOT EXISTS scan.rows(
            source TEXT NOT NULL,
            source_id TEXT NOT NULL,
            hash BLOB NOT NULL,
            input TEXT NOT NULL,
            truncated INTEGER NOT NULL,
            flagged INTEGER,
            \(columns)PRIMARY KEY(source, source_id));
        CREATE TABLE IF NOT EXISTS scan.ids(
            source TEXT NOT NULL,
            source_id TEXT NOT NULL,
            raw,
            flagged INTEGER NOT NULL,
            hash BLOB,
            \(columns)PRIMARY KEY(source, source_id)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS scan.chunks(
            source TEXT NOT NULL,
            source_id TEXT NOT NULL,
            chunk INTEGER NOT NULL,
            span_start INTEGER NOT NULL,
            span_end INTEGER NOT NULL,
            hash BLOB NOT NULL,
            input TEXT NOT NULL,
            PRIMARY KEY(source, source_id, chunk));
        """
    }

    /// Attaches `scan` to `db`'s connection: anonymous by default; a run
    /// stages into a named file beside its work file (`path`), so the staged
    /// scan survives reopening the work file on a clone of the live file.
    static func attach(_ db: Database, attributes: [AttributeSpec], path: String = "") throws {
        try db.execute(sql: "ATTACH DATABASE ? AS scan", arguments: [path])
        try db.execute(sql: """
            PRAGMA scan.journal_mode = OFF;
            PRAGMA scan.synchronous = OFF;
            PRAGMA scan.cache_size = -4000;
            """)
        try db.execute(sql: schema(attributes: attributes))
    }

    /// Stages one page of scanned rows (with their attributes, in the job's
    /// order); an id seen twice in a source is a usage error.
    static func stage(_ db: Database, source: String, rows: [ScannedRow], attributes: [AttributeSpec]) throws {
        let columns = attributes.map { ", \(StagingArea.column($0.name))" }.joined()
        let marks = String(repeating: ", ?", count: attributes.count)
        let statement = try db.cachedStatement(sql: "INSERT INTO scan.rows(source, source_id, hash, input, truncated, flagged\(columns)) VALUES (?, ?, ?, ?, ?, ?\(marks))")
        for row in rows {
            precondition(row.attributes.count == attributes.count)
            do {
                var arguments: StatementArguments = [source, row.sourceID, row.hash, row.input, row.truncated, row.flagged]
                arguments += StatementArguments(row.attributes)
                try statement.execute(arguments: arguments)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                throw ReindexError.sourceQuery(source: source, detail: "the query returned the id \"\(row.sourceID)\" twice (got a duplicate id) — ids must be unique within a source; fix the query")
            }
        }
    }

    /// Stages one page of the id pass (ids as text, as the scan stores
    /// them, and as the primary returned them, to read those rows later).
    static func stage(_ db: Database, source: String, ids: [FlaggedID]) throws {
        let statement = try db.cachedStatement(sql: "INSERT OR IGNORE INTO scan.ids(source, source_id, raw, flagged) VALUES (?, ?, ?, ?)")
        for id in ids {
            guard let text = SourceScanner.idString(id.raw) else { continue }
            try statement.execute(arguments: [source, text, id.raw, id.flagged])
        }
    }

    /// Moves the ids in `temp.page` (as the primary returned them) into
    /// `scan.ids`, as text the way `SourceScanner.idString` writes them: in
    /// SQL for integers, texts and blobs, in Swift for the rare real id.
    static func stagePage(_ db: Database, source: String) throws {
        try db.execute(sql: """
            INSERT OR IGNORE INTO scan.ids(source, source_id, raw, flagged)
            SELECT ?, \(idText), raw, flagged
            FROM temp.page WHERE typeof(raw) IN ('integer', 'text', 'blob') ORDER BY rowid
            """, arguments: [source])
        let reals = try Row.fetchAll(db, sql: "SELECT raw, flagged FROM temp.page WHERE typeof(raw) = 'real'")
        if !reals.isEmpty { try stage(db, source: source, ids: reals.map { FlaggedID(raw: $0[0], flagged: $0[1] == 1) }) }
        try db.execute(sql: "DELETE FROM temp.page")
    }

    /// A staged page's `raw` id as text, as `SourceScanner.idString` writes
    /// integers, texts and blobs (a real id is converted in Swift).
    static let idText = "CASE typeof(raw) WHEN 'integer' THEN CAST(raw AS TEXT) WHEN 'text' THEN raw ELSE lower(hex(raw)) END"

    /// Moves one page of the hash pass (`temp.hash_page`: the id as the
    /// primary returned it, whether the text is not NULL, the hash, 0 for a
    /// blank text or NULL, the attributes) into `scan.ids`, ids as text as
    /// `stagePage` writes them; a real id is staged without a hash (its row
    /// is read in Swift). Returns the rows without an id, and the ones
    /// without a text or with a blank one (skipped, as the scan skips them).
    /// An id seen twice in a source is a usage error.
    static func stageHashPage(_ db: Database, source: String, attributes: [AttributeSpec]) throws -> (nullIDs: Int, noText: Int) {
        let columns = attributes.map { ", " + column($0.name) }.joined()
        // One pass to count, one to stage: 0.4 s less at 1M messages than marking the blanks first.
        let kept = "has_text AND typeof(hash) IS NOT 'integer'"
        let counts = try Row.fetchOne(db, sql: """
            SELECT coalesce(sum(raw IS NULL), 0), coalesce(sum(raw IS NOT NULL AND NOT (\(kept))), 0),
                   coalesce(sum(typeof(raw) = 'real' AND \(kept)), 0) FROM temp.hash_page
            """)!
        do {
            try db.execute(sql: """
                INSERT INTO scan.ids(source, source_id, raw, flagged, hash\(columns))
                SELECT ?, \(idText), raw, 0, hash\(columns)
                FROM temp.hash_page WHERE typeof(raw) IN ('integer', 'text', 'blob') AND \(kept) ORDER BY rowid
                """, arguments: [source])
            if counts[2] as Int > 0 {
                let statement = try db.cachedStatement(sql: "INSERT INTO scan.ids(source, source_id, raw, flagged\(columns)) VALUES (?, ?, ?, 0\(String(repeating: ", ?", count: attributes.count)))")
                for row in try Row.fetchAll(db, sql: "SELECT raw\(columns) FROM temp.hash_page WHERE typeof(raw) = 'real' AND \(kept)") {
                    let raw: DatabaseValue = row[0]
                    let values: [DatabaseValue] = [source.databaseValue, (SourceScanner.idString(raw) ?? "").databaseValue, raw]
                    try statement.execute(arguments: StatementArguments(values + attributes.indices.map { row[1 + $0] as DatabaseValue }))
                }
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            let twice = try String.fetchOne(db, sql: """
                SELECT id FROM (SELECT \(idText) AS id FROM temp.hash_page WHERE raw IS NOT NULL AND \(kept)) p
                WHERE EXISTS (SELECT 1 FROM scan.ids i WHERE i.source = ? AND i.source_id = p.id) GROUP BY id
                UNION ALL SELECT id FROM (SELECT \(idText) AS id FROM temp.hash_page WHERE raw IS NOT NULL AND \(kept)) GROUP BY id HAVING count(*) > 1
                LIMIT 1
                """, arguments: [source]) ?? "?"
            throw ReindexError.sourceQuery(source: source, detail: "the query returned the id \"\(twice)\" twice (got a duplicate id) — ids must be unique within a source; fix the query")
        }
        try db.execute(sql: "DELETE FROM temp.hash_page")
        return (counts[0], counts[1])
    }

    /// Collects, in `temp.to_read`, the ids of the hash pass whose rows a
    /// run reads in full: the ones the live file lacks, holds with another
    /// hash or other attributes, and the ones the pass left without a hash;
    /// every other row is unchanged and never leaves the primary's SQLite.
    /// Without attributes, and with the live file's `items_rows`, one
    /// compound `SELECT … EXCEPT … ORDER BY` that SQLite runs as a merge of
    /// two sorted indexes; otherwise one probe of `temp.live_rows` per id.
    static func collectChangedHashes(_ db: Database, source: String, attributes: [AttributeSpec]) throws {
        let merge = try attributes.isEmpty && Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM \(LiveFile.schema).sqlite_schema WHERE type = 'index' AND name = ?)",
                                                             arguments: [VectorFileFormat.rowsIndex]) == true
        let select = merge ? """
            SELECT source_id FROM (
                SELECT source_id, hash FROM scan.ids WHERE source = ?1
                EXCEPT SELECT source_id, row_hash FROM \(LiveFile.schema).items INDEXED BY \(VectorFileFormat.rowsIndex) WHERE source = ?1 AND chunk = 0
                ORDER BY 1, 2)
            """ : """
            SELECT r.source_id FROM scan.ids r LEFT JOIN temp.live_rows l ON l.source = r.source AND l.source_id = r.source_id
            WHERE r.source = ?1 AND (r.hash IS NULL OR l.source IS NULL OR l.row_hash IS NOT r.hash OR \(SourceDiff.attributesDiffer(attributes)))
            ORDER BY 1
            """
        try db.execute(sql: """
            DROP TABLE IF EXISTS temp.to_read;
            CREATE TEMP TABLE to_read(source_id TEXT PRIMARY KEY) WITHOUT ROWID;
            INSERT INTO temp.to_read(source_id) \(select)
            """, arguments: [source])
    }

    /// Forgets the ids the hash pass left without a hash once their rows were
    /// read in full: a row read is in `scan.rows`, and one the scan skipped
    /// (a blank text) must count as gone, not as unchanged.
    static func dropUnhashedIDs(_ db: Database, source: String) throws {
        try db.execute(sql: "DELETE FROM scan.ids WHERE source = ? AND hash IS NULL", arguments: [source])
    }

    /// Collects, in `temp.to_read`, the ids of the id pass whose rows a
    /// `changed-column` run reads in full: the flagged ones (the column at
    /// or past the watermark) and the ones the live file (`temp.live_rows`)
    /// lacks (inserted with an old value, failed before). One compound
    /// `SELECT … ORDER BY`, which SQLite runs as a merge of the two sorted
    /// indexes: 0.15 s for 970,000 ids at 1M messages, where probing the
    /// live file once per id took 0.53 s.
    static func collectIDsToRead(_ db: Database, source: String) throws {
        try db.execute(sql: """
            DROP TABLE IF EXISTS temp.to_read;
            CREATE TEMP TABLE to_read(source_id TEXT PRIMARY KEY) WITHOUT ROWID;
            INSERT INTO temp.to_read(source_id)
            SELECT source_id FROM scan.ids WHERE source = ?1
            EXCEPT SELECT source_id FROM temp.live_rows WHERE source = ?1
            UNION SELECT source_id FROM scan.ids WHERE source = ?1 AND flagged = 1
            ORDER BY 1
            """, arguments: [source])
    }

    /// The next ids of `temp.to_read` (`collectIDsToRead`) not yet staged,
    /// as the primary returned them, after `after` (a staged id), at most
    /// `limit`. `CROSS JOIN` keeps `to_read` outside: the planner, without
    /// statistics on it, walked all of `scan.ids` instead (0.14 s at 1M).
    static func idsToRead(_ db: Database, source: String, after: String, limit: Int) throws -> [(id: String, raw: DatabaseValue)] {
        try Row.fetchAll(db, sql: """
            SELECT t.source_id, i.raw FROM temp.to_read t CROSS JOIN scan.ids i ON i.source = ? AND i.source_id = t.source_id
            WHERE t.source_id > ?
              AND NOT EXISTS (SELECT 1 FROM scan.rows r WHERE r.source = i.source AND r.source_id = i.source_id)
            ORDER BY t.source_id LIMIT ?
            """, arguments: [source, after, limit]).map { ($0[0], $0[1]) }
    }

    /// Empties the staging tables (a scan read in part is read again whole).
    static func clear(_ db: Database) throws {
        try db.execute(sql: "DELETE FROM scan.rows; DELETE FROM scan.chunks; DELETE FROM scan.ids; DROP TABLE IF EXISTS scan.diff")
    }

    /// The condition, on a staged row `r`, that the live file holds all of its
    /// chunks already: the same row hash, and for a `/1` file a text short
    /// enough to be one chunk (`/1` stored whole rows). Such rows are copied
    /// whole and never chunked again.
    static func reusableWhole(liveFormat: String?, size: Int, prefixLength: Int) -> String {
        switch liveFormat {
        case VectorFileFormat.version?:
            return "EXISTS (SELECT 1 FROM temp.live_rows l WHERE l.source = r.source AND l.source_id = r.source_id AND l.row_hash = r.hash)"
        case VectorFileFormat.previousVersion?:
            return """
                length(r.input) - \(prefixLength) <= \(size) AND EXISTS (SELECT 1 FROM temp.live_rows l
                  WHERE l.source = r.source AND l.source_id = r.source_id AND l.row_hash = r.hash)
                """
        default:
            return "0"
        }
    }

    /// The staged rows a clone must chunk and embed, when it was cloned from
    /// the live file this run planned against: the ones the plan found new,
    /// failed or changed (`scan.diff`), read from the diff rather than by
    /// probing it once per staged row (two passes over `scan.rows`, about
    /// 1.4 s of a 0.1% run at 1M messages).
    static let changedInDiff = CloneRows(
        from: "scan.diff d CROSS JOIN scan.rows r ON r.source = d.source AND r.source_id = d.source_id AND d.kind IN ('new', 'failed', 'changed')",
        whole: "0")

    /// The condition, on a staged row `r`, that a work file cloned from
    /// another file (an adopted one) already holds all of its chunks: it has
    /// the row's chunk 0 (the clone's rows whose hash changed were deleted by
    /// `reconcile`) and none of its items was written by this run
    /// (`work_delta` op `insert`: a row embedded by an interrupted attempt
    /// may be partial).
    static let notInClone = CloneRows(from: "scan.rows r", whole: wholeInClone)

    static let wholeInClone = """
        EXISTS (SELECT 1 FROM main.items m WHERE m.source = r.source AND m.source_id = r.source_id AND m.chunk = 0)
        AND NOT EXISTS (SELECT 1 FROM main.items m JOIN main.work_delta d ON d.id = m.id AND d.op = 'insert'
                        WHERE m.source = r.source AND m.source_id = r.source_id)
        """

    /// Stages, in one statement, the rows to embed that fit one chunk: their
    /// chunk is the whole text, with the row's input and hash (the chunker's
    /// contract for a text of at most `size` scalars). Most rows of a chat
    /// corpus are such rows; only longer ones go through the chunker in Swift
    /// (`rowsToChunk`). Measured: chunking every row in Swift cost 0.14 s of a
    /// 0.68 s full run at 10,000 messages.
    /// `clone` replaces `reusableWhole` on the clone path.
    static func stageSingleChunkRows(_ db: Database, liveFormat: String?, chunking: ChunkSettings, prefixLength: Int, clone: CloneRows? = nil) throws {
        let whole = clone?.whole ?? reusableWhole(liveFormat: liveFormat, size: chunking.size, prefixLength: prefixLength)
        try db.execute(sql: """
            INSERT OR REPLACE INTO scan.chunks(source, source_id, chunk, span_start, span_end, hash, input)
            SELECT r.source, r.source_id, 0, 0, length(r.input) - \(prefixLength), r.hash, r.input FROM \(clone?.from ?? "scan.rows r")
            WHERE length(r.input) - \(prefixLength) <= \(chunking.size) AND length(r.input) > 0 AND NOT (\(whole))
            """)
    }

    /// Staged rows longer than one chunk that must be chunked (see
    /// `reusableWhole`), after `rowid`.
    static func rowsToChunk(_ db: Database, after rowid: Int64, limit: Int, liveFormat: String?, chunking: ChunkSettings,
                            prefixLength: Int, clone: CloneRows? = nil) throws -> [(rowid: Int64, source: String, row: ScannedRow)] {
        let whole = clone?.whole ?? reusableWhole(liveFormat: liveFormat, size: chunking.size, prefixLength: prefixLength)
        let rows = try Row.fetchCursor(db, sql: """
            SELECT r.rowid, r.source, r.source_id, r.hash, r.input, r.truncated FROM \(clone?.from ?? "scan.rows r")
            WHERE r.rowid > ? AND length(r.input) - \(prefixLength) > \(chunking.size) AND NOT (\(whole))
            ORDER BY r.rowid LIMIT ?
            """, arguments: [rowid, limit])
        var out: [(rowid: Int64, source: String, row: ScannedRow)] = []
        var held = 0
        while let r = try rows.next() {
            let row = ScannedRow(sourceID: r[2], hash: r[3], input: r[4], truncated: r[5], attributes: [])
            out.append((r[0], r[1], row))
            // Memory bounded in bytes, not rows: a page of long documents stops early.
            held += row.input.utf8.count
            if held >= SourceScanner.pageBytes { break }
        }
        return out
    }

    /// Stages the chunks of rows that need embedding.
    static func stage(_ db: Database, chunks: [PendingChunk]) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT OR REPLACE INTO scan.chunks(source, source_id, chunk, span_start, span_end, hash, input) VALUES (?, ?, ?, ?, ?, ?, ?)
            """)
        for c in chunks {
            try statement.execute(arguments: [c.source, c.sourceID, c.chunk, c.start, c.end, c.hash, c.input])
        }
    }
}

/// A private in-memory connection with `scan` attached, for the commands that
/// compare the primary with the live file without building anything (dry
/// run, `verify`): nothing is created beside the output.
public final class ScratchComparison: Sendable {
    let queue: DatabaseQueue
    let attributes: [AttributeSpec]

    init(attributes: [AttributeSpec]) throws {
        self.attributes = attributes
        queue = try DatabaseQueue()
        try queue.writeWithoutTransaction { db in try StagingArea.attach(db, attributes: attributes) }
    }

    func stage(source: String, rows: [ScannedRow]) async throws {
        let attributes = self.attributes
        try await queue.write { db in try StagingArea.stage(db, source: source, rows: rows, attributes: attributes) }
    }

    /// The attributes' types from the staged values (`AttributeColumn.resolve`).
    func attributeColumns() throws -> [AttributeColumn] {
        try queue.read { db in try AttributeColumn.resolve(attributes, db) }
    }

    /// Attaches the live file when it is a compatible base (dry run).
    func attachLive(path: String, model: ModelConfig) -> LiveStatus {
        LiveFile.attachIfUsable(queue, path: path, model: model, attributes: attributes)
    }

    /// Attaches the live file whatever it holds (`verify` checks it itself).
    func attachLiveForChecking(path: String) throws {
        try queue.writeWithoutTransaction { db in
            try LiveFile.attach(db, path: path)
            // The per-row view, when the file is readable enough to have one.
            try? LiveFile.createRowsView(db, format: VectorFileFormat.version, attributes: self.attributes)
        }
    }

    func diff(sources: [String], liveAttached: Bool, sample: Int) throws -> [SourceDiff] {
        // A write: the diff is kept in `scan.diff` (the anonymous staging database).
        try queue.write { db in try SourceDiff.compute(db, sources: sources, attributes: attributes, liveAttached: liveAttached, sample: sample) }
    }

    /// What a run would embed, per source, by cutting the rows it would
    /// chunk exactly as it would and leaving out the chunks the live file
    /// already has: rows, chunks and characters of model input.
    func toEmbed(liveFormat: String?, chunking: ChunkSettings, prefix: String) throws -> [String: (rows: Int, chunks: Int, chars: Int)] {
        let prefixLength = prefix.unicodeScalars.count
        let chunker = chunking.chunker
        var out: [String: (rows: Int, chunks: Int, chars: Int)] = [:]
        // Rows that fit one chunk, counted in SQL (their chunk is the row; a live item with its hash is reused).
        let whole = StagingArea.reusableWhole(liveFormat: liveFormat, size: chunking.size, prefixLength: prefixLength)
        let inLive = liveFormat == nil ? "0" : "EXISTS (SELECT 1 FROM live.items l WHERE l.source = r.source AND l.source_id = r.source_id AND l.content_hash = r.hash)"
        for row in try queue.read({ db in
            try Row.fetchAll(db, sql: """
                SELECT r.source, count(*), coalesce(sum(length(r.input)), 0) FROM scan.rows r
                WHERE length(r.input) - \(prefixLength) <= \(chunking.size) AND length(r.input) > 0 AND NOT (\(whole)) AND NOT (\(inLive))
                GROUP BY r.source
                """)
        }) {
            out[row[0]] = (row[1], row[1], row[2])
        }
        func liveHas(_ c: PendingChunk) throws -> Bool {
            try queue.read { db in
                try Bool.fetchOne(db, sql: "SELECT 1 FROM live.items WHERE source = ? AND source_id = ? AND content_hash = ? LIMIT 1",
                                  arguments: [c.source, c.sourceID, c.hash]) ?? false
            }
        }
        var cursor: Int64 = 0
        while true {
            let page = try queue.read { db in
                try StagingArea.rowsToChunk(db, after: cursor, limit: 256, liveFormat: liveFormat, chunking: chunking, prefixLength: prefixLength)
            }
            guard let last = page.last else { return out }
            cursor = last.rowid
            for (_, source, row) in page {
                // Chunks the live file already embedded in this row are reused, not sent.
                let chunks = try ReuseStage.chunks(of: row, source: source, chunker: chunker, prefix: prefix, prefixLength: prefixLength)
                    .filter { try !(liveFormat != nil && liveHas($0)) }
                guard !chunks.isEmpty else { continue }
                var sum = out[source] ?? (0, 0, 0)
                sum.rows += 1
                sum.chunks += chunks.count
                sum.chars += chunks.reduce(0) { $0 + $1.input.unicodeScalars.count }
                out[source] = sum
            }
        }
    }

    /// Runs `body` in one transaction on this connection: it writes only
    /// to `scan` (the diff, `SourceDiff.materialize`); the live file is
    /// attached read-only.
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try queue.write(body)
    }

    /// Loads an extension into this connection (to check `vec_items`).
    func load(_ ext: SQLiteVecExtension) async throws -> String {
        try await queue.writeWithoutTransaction { db in try ext.load(into: db) }
    }

    func close() {
        try? queue.close()
    }
}

/// The staged rows a clone of a vector file must still chunk: `from` is an
/// SQL source of staged rows aliased `r`, `whole` the condition on `r` that
/// the clone holds the row already (those are skipped).
struct CloneRows: Sendable {
    let from: String
    let whole: String
}
