import Foundation
import GRDB

/// An embedded row on its way to the vector file: the vector is already
/// L2-normalized little-endian float32, the layout sqlite-vec reads.
public struct EmbeddedItem: Sendable {
    public var source: String
    public var sourceID: String
    public var hash: Data
    public var embedding: Data
}

/// A row the model would not embed (after bisecting its batch).
public struct FailedItem: Sendable {
    public var source: String
    public var sourceID: String
    public var error: String
}

/// A vector file under construction (`<output>.work`), the single writer of
/// the job. It holds the `reindex-vectors/1` tables plus two private tables
/// (`work_state`, `work_copied`) that make it a resumable checkpoint; they are
/// dropped before publishing. A private, anonymous `scan` database (SQLite
/// deletes it on close, even after a crash) holds the staged source rows, and
/// the live vector file is attached read-only as `live` when it is usable.
public final class VectorStore: Sendable {
    public static let format = "reindex-vectors/1"

    public let path: String
    public let queue: DatabaseQueue
    public let dimensions: Int
    /// Whether the build runs in WAL mode (see `init`).
    public let wal: Bool

    /// 8 KiB pages: a 384-dimension row (~1.6 KB) packs 4–5 to a page instead
    /// of 2 to a 4 KiB page (a fifth of the file was slack), so every stage
    /// that writes or reads the file moves ~20% fewer bytes. Never worse than
    /// 4 KiB for any dimension. Only applies to a new file.
    static let pageSize = 8192

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
            // here + 16 MB staging filled up to ~137 MB; bench figures in
            // docs-performance.md).
            try db.execute(sql: "PRAGMA cache_size = -8000")
        }
        do {
            queue = try DatabaseQueue(path: path, configuration: config)
            try queue.writeWithoutTransaction { db in
                // Before WAL and the first table: afterwards SQLite ignores it.
                try db.execute(sql: "PRAGMA main.page_size = \(Self.pageSize)")
                if wal {
                    try db.execute(sql: "PRAGMA journal_mode = WAL")
                    try db.execute(sql: "PRAGMA synchronous = NORMAL")
                } else {
                    try db.execute(sql: "PRAGMA journal_mode = DELETE")
                    try db.execute(sql: "PRAGMA synchronous = FULL")
                }
                try db.execute(sql: Self.schema)
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS work_state(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                    CREATE TABLE IF NOT EXISTS work_copied(id INTEGER PRIMARY KEY);
                    """)
                try Self.attachScan(db)
            }
        } catch let error as DatabaseError {
            throw ReindexError.io(path: path, detail: "cannot create the work file: \(error.message ?? "\(error)")")
        }
    }

    /// The `reindex-vectors/1` tables (README.md, "Vector file format").
    public static let schema = """
        CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS items(
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            source_id TEXT NOT NULL,
            content_hash BLOB NOT NULL,
            embedding BLOB NOT NULL,
            embedded_at INTEGER NOT NULL,
            UNIQUE(source, source_id));
        CREATE TABLE IF NOT EXISTS failures(
            source TEXT NOT NULL,
            source_id TEXT NOT NULL,
            error TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            last_attempt_at INTEGER NOT NULL,
            PRIMARY KEY(source, source_id));
        CREATE TABLE IF NOT EXISTS runs(
            run_id TEXT PRIMARY KEY,
            mode TEXT NOT NULL,
            full_reason TEXT,
            started_at INTEGER NOT NULL,
            finished_at INTEGER NOT NULL,
            scanned INTEGER NOT NULL,
            skipped INTEGER NOT NULL,
            embedded INTEGER NOT NULL,
            reused INTEGER NOT NULL,
            removed INTEGER NOT NULL,
            failed INTEGER NOT NULL,
            requests INTEGER NOT NULL,
            duration_s REAL NOT NULL,
            items_per_s REAL);
        """

    static let scanSchema = """
        CREATE TABLE IF NOT EXISTS scan.rows(
            source TEXT NOT NULL,
            source_id TEXT NOT NULL,
            hash BLOB NOT NULL,
            input TEXT NOT NULL,
            truncated INTEGER NOT NULL,
            PRIMARY KEY(source, source_id));
        """

    // MARK: Work state (checkpoint identity)

    public func workState() throws -> [String: String] {
        try queue.read { db in
            var out: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT key, value FROM work_state") { out[row[0]] = row[1] }
            return out
        }
    }

    public func setWorkState(_ values: [String: String]) throws {
        try queue.write { db in
            for (k, v) in values {
                try db.execute(sql: "INSERT INTO work_state(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", arguments: [k, v])
            }
        }
    }

    // MARK: Staging

    /// Attaches `scan`, the private staging database: anonymous, so SQLite
    /// deletes it on close and even after a crash, and nothing appears beside
    /// the output (dry runs and `verify` stage there too).
    static func attachScan(_ db: Database) throws {
        try db.execute(sql: """
            ATTACH DATABASE '' AS scan;
            PRAGMA scan.journal_mode = OFF;
            PRAGMA scan.synchronous = OFF;
            PRAGMA scan.cache_size = -4000;
            """)
        try db.execute(sql: scanSchema)
    }

    /// Stages one page of scanned rows in `scan` on any connection that attached it.
    static func stage(_ queue: DatabaseQueue, source: String, rows: [ScannedRow]) async throws {
        try await queue.write { db in
            let statement = try db.cachedStatement(sql: "INSERT INTO scan.rows(source, source_id, hash, input, truncated) VALUES (?, ?, ?, ?, ?)")
            for row in rows {
                do {
                    try statement.execute(arguments: [source, row.sourceID, row.hash, row.input, row.truncated])
                } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                    throw ReindexError.sourceQuery(source: source, detail: "the query returned the id \"\(row.sourceID)\" twice; ids must be unique within a source")
                }
            }
        }
    }

    public func stage(source: String, rows: [ScannedRow]) async throws {
        try await Self.stage(queue, source: source, rows: rows)
    }

    // MARK: Writing

    /// Commits one batch: its vectors and failures in one transaction, so each
    /// committed batch is a checkpoint a resumed run starts from.
    public func write(items: [EmbeddedItem], failures: [FailedItem]) async throws {
        let now = Int64(Date().timeIntervalSince1970)
        let expected = dimensions * 4
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

    // MARK: Resume and reuse

    /// Drops work items whose row changed or vanished since they were embedded,
    /// and (for a full run) the ones copied from the old file. Returns how many
    /// embedded items are carried over.
    public func reconcile(dropCopied: Bool) throws -> Int {
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
            return try Int.fetchOne(db, sql: "SELECT count(*) FROM items WHERE id NOT IN (SELECT id FROM work_copied)") ?? 0
        }
    }

    /// Copies unchanged vectors from the live file in set-based SQL, keeping
    /// their ids (the rowids an application may cache) when free.
    ///
    /// The copy is one transaction in rollback-journal mode: pages appended
    /// to the file are not journaled, whereas WAL would write every copied
    /// page twice (WAL, then checkpoint) — ~30% of an incremental run.
    /// Crash-safe all the same: a killed copy leaves a hot journal that SQLite
    /// rolls back on the next open, and the next open switches back to WAL.
    public func reuseFromLive() throws -> Int {
        if wal { try setMainJournal("DELETE") }
        let copied: Int
        do {
            copied = try copyFromLive()
        } catch {
            if wal { try? setMainJournal("WAL") }
            throw error
        }
        if wal { try setMainJournal("WAL") }
        return copied
    }

    private func copyFromLive() throws -> Int {
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
                """, arguments: [dimensions * 4])
            let n = try Int.fetchOne(db, sql: "SELECT count(*) FROM temp.reuse") ?? 0
            try db.execute(sql: "DROP TABLE temp.reuse")
            return n
        }
    }

    private func setMainJournal(_ mode: String) throws {
        try queue.writeWithoutTransaction { db in
            // `main.` only: the staging and live databases keep their own modes.
            let now = try String.fetchOne(db, sql: "PRAGMA main.journal_mode = \(mode)")
            guard now?.uppercased() == mode else {
                throw ReindexError.io(path: path, detail: "could not switch the work file to \(mode) journal mode (got \(now ?? "nil"))")
            }
        }
    }

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

    public func pendingCount() throws -> (rows: Int, chars: Int) {
        try queue.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT count(*), coalesce(sum(length(r.input)), 0) FROM scan.rows r WHERE NOT EXISTS (
                    SELECT 1 FROM main.items i WHERE i.source = r.source AND i.source_id = r.source_id)
                """)!
            return (row[0], row[1])
        }
    }
}
