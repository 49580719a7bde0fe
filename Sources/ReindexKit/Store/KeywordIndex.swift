import Foundation
import GRDB
import Logging

/// The FTS5 index of a vector file: `keywords(text)`, rowid = `items.id`,
/// one row per chunk holding the chunk's model input without the prefix
/// (docs/format.md, "Keywords"). Built by the run that builds `vec_items`
/// and published by the same rename, so keyword and vector answers always
/// come from the same items.
///
/// Like `vec_items` it is rebuilt from `items` in every new file: the text
/// comes from the staged rows (every row of the run is staged with its
/// input), and FTS5 indexes ~100,000 chunks a second here, a small part of
/// a run (docs/performance.md).
public enum KeywordIndex {
    public static let table = "keywords"

    /// Fails now, before any work, when this SQLite cannot build the index
    /// the job asks for (no FTS5, or no trigram tokenizer before 3.34).
    static func probe(_ settings: KeywordSettings) throws {
        var version = "?"
        do {
            let scratch = try DatabaseQueue()
            try scratch.writeWithoutTransaction { db in
                version = try String.fetchOne(db, sql: "SELECT sqlite_version()") ?? "?"
                try db.execute(sql: createSQL(settings, schema: "temp"))
            }
            try scratch.close()
        } catch let error as DatabaseError {
            throw ReindexError.usage("keywords: this SQLite (\(version)) cannot build an FTS5 index with the \(settings.tokenizer.rawValue) tokenizer (got \(error.message ?? "\(error)")) — pick another tokenizer (\(KeywordSettings.Tokenizer.allCases.map(\.rawValue).joined(separator: ", "))) or remove `keywords` from the job")
        }
    }

    static func createSQL(_ settings: KeywordSettings, schema: String = "main") -> String {
        "CREATE VIRTUAL TABLE \(schema).\(table) USING fts5(text, tokenize = '\(settings.tokenizer.fts5)')"
    }

    static func exists(_ db: Database, schema: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT count(*) > 0 FROM \(schema).sqlite_schema WHERE name = '\(table)'") ?? false
    }

    /// A chunk's text on a staged row `r` of item `i`: its span of the input, after the prefix.
    static func chunkText(prefixLength p: Int) -> String {
        "substr(r.input, \(p) + i.span_start + 1, i.span_end - i.span_start)"
    }

    /// Drops any `keywords` in the work file (left by an earlier attempt, or
    /// by a job that turned it off) and, when wanted, fills it anew from
    /// `items` and the staged rows in one transaction. Returns a note for
    /// the summary when it built one.
    static func build(_ db: Database, settings: KeywordSettings?, prefixLength: Int, logger: Logger) throws -> String? {
        let started = ContinuousClock.now
        try db.inTransaction {
            if try exists(db, schema: "main") { try db.execute(sql: "DROP TABLE main.\(table)") }
            if let settings {
                try db.execute(sql: createSQL(settings))
                try db.execute(sql: """
                    INSERT INTO main.\(table)(rowid, text)
                    SELECT i.id, \(chunkText(prefixLength: prefixLength)) FROM main.items i
                    JOIN scan.rows r ON r.source = i.source AND r.source_id = i.source_id ORDER BY i.id
                    """)
                // Fewer b-tree segments: every query reads one instead of a dozen.
                try db.execute(sql: "INSERT INTO main.\(table)(\(table)) VALUES ('optimize')")
            }
            return .commit
        }
        guard let settings else { return nil }
        let rows = try Int.fetchOne(db, sql: "SELECT count(*) FROM main.items") ?? 0
        let seconds = (ContinuousClock.now - started).seconds
        logger.info("built keywords", metadata: ["rows": "\(rows)", "seconds": "\(String(format: "%.2f", seconds))", "tokenizer": "\(settings.tokenizer.rawValue)"])
        return String(format: "keywords index built (FTS5, %@ tokenizer, %d chunks, %.2f s)", settings.tokenizer.rawValue, rows, seconds)
    }

    /// Whether the file's keyword index is the one `settings` describe
    /// (present with the same tokenizer, or absent for nil).
    static func matches(_ db: Database, settings: KeywordSettings?) throws -> Bool {
        let sql = try String.fetchOne(db, sql: "SELECT sql FROM main.sqlite_schema WHERE name = '\(table)'")
        guard let settings else { return sql == nil }
        return sql?.contains("tokenize = '\(settings.tokenizer.fts5)'") == true
    }

    /// Applies the work file's pending delta (`WorkFile.pendingDelta`) on a
    /// clone of the live file: every inserted or deleted id is deleted and,
    /// when it is still an item, inserted again with its chunk's text from
    /// the staged rows. An updated item of the clone keeps its row: an
    /// update changes attributes or a chunk's number, never its text.
    /// Runs inside `WorkFile.applyDelta`'s transaction, beside `VecIndex.apply`.
    static func apply(_ db: Database, prefixLength: Int) throws {
        let changed = "SELECT id FROM main.work_delta WHERE indexed = 0 AND op != 'update'"
        try db.execute(sql: """
            DELETE FROM main.\(table) WHERE rowid IN (\(changed));
            INSERT INTO main.\(table)(rowid, text)
            SELECT i.id, \(chunkText(prefixLength: prefixLength)) FROM main.items i
            JOIN scan.rows r ON r.source = i.source AND r.source_id = i.source_id
            WHERE i.id IN (\(changed)) ORDER BY i.id;
            """)
    }

    /// The clone path's check (`WorkFile.checkDelta`): one row per item
    /// (counted through FTS5's docsize table), every id of `delta` that is
    /// an item holding its chunk's staged text, none of the deleted ones left.
    static func checkDelta(_ db: Database, items: Int, delta: String, prefixLength: Int) throws -> [String] {
        var problems: [String] = []
        let rows = try Int.fetchOne(db, sql: "SELECT count(*) FROM main.\(table)_docsize") ?? 0
        if rows != items { problems.append("keywords has \(rows) rows, items has \(items)") }
        let differing = try Int64.fetchAll(db, sql: """
            SELECT i.id FROM main.items i JOIN scan.rows r ON r.source = i.source AND r.source_id = i.source_id
            WHERE i.id IN (\(delta))
              AND (SELECT k.text FROM main.\(table) k WHERE k.rowid = i.id) IS NOT \(chunkText(prefixLength: prefixLength))
            ORDER BY i.id LIMIT 5
            """)
        if !differing.isEmpty {
            problems.append("keywords rows missing or differing from the chunk written by this run, ids: \(differing.map(String.init).joined(separator: ", "))")
        }
        let left = try Int64.fetchAll(db, sql: """
            SELECT d.id FROM (\(delta)) d WHERE NOT EXISTS (SELECT 1 FROM main.items i WHERE i.id = d.id)
              AND EXISTS (SELECT 1 FROM main.\(table)_docsize k WHERE k.id = d.id) ORDER BY d.id LIMIT 5
            """)
        if !left.isEmpty { problems.append("keywords rows deleted by this run are still there: \(left.map(String.init).joined(separator: ", "))") }
        return problems
    }

    /// Checks `keywords` in `schema` against `items`: one row per item and
    /// no row without one; on the work file (`staged`, a writable
    /// connection), also FTS5's own integrity check (the index matches the
    /// stored text: FTS5 runs it as an INSERT, so a read-only reader
    /// cannot) and every row's text equal to its chunk of the staged input.
    /// Returns the problems.
    static func check(_ db: Database, schema: String, stagedPrefixLength: Int? = nil) throws -> [String] {
        var problems: [String] = []
        if stagedPrefixLength != nil {
            do {
                try db.execute(sql: "INSERT INTO \(schema).\(table)(\(table), rank) VALUES ('integrity-check', 1)")
            } catch let error as DatabaseError {
                problems.append("the keywords index does not match its text (FTS5 integrity-check: \(error.message ?? "\(error)"))")
            }
        }
        let items = try Int.fetchOne(db, sql: "SELECT count(*) FROM \(schema).items") ?? 0
        let rows = try Int.fetchOne(db, sql: "SELECT count(*) FROM \(schema).\(table)") ?? 0
        if rows != items { problems.append("keywords has \(rows) rows, items has \(items)") }
        let orphans = try Int64.fetchAll(db, sql: """
            SELECT k.rowid FROM \(schema).\(table) k WHERE NOT EXISTS (SELECT 1 FROM \(schema).items i WHERE i.id = k.rowid) ORDER BY k.rowid LIMIT 5
            """)
        if !orphans.isEmpty { problems.append("keywords rowids with no item: \(orphans.map(String.init).joined(separator: ", "))") }
        if let p = stagedPrefixLength {
            let differing = try Int64.fetchAll(db, sql: """
                SELECT i.id FROM \(schema).items i JOIN scan.rows r ON r.source = i.source AND r.source_id = i.source_id
                LEFT JOIN \(schema).\(table) k ON k.rowid = i.id
                WHERE k.text IS NOT \(chunkText(prefixLength: p)) ORDER BY i.id LIMIT 5
                """)
            if !differing.isEmpty { problems.append("keywords text differs from the chunk's input for items \(differing.map(String.init).joined(separator: ", "))") }
        }
        return problems
    }
}
