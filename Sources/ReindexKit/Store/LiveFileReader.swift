import Foundation
import GRDB

/// A published vector file opened read-only on its own, for the commands
/// that read it without a scan (`search`): its meta, its vectors streamed in
/// blocks, one item's key.
final class LiveFileReader {
    let path: String
    private let queue: DatabaseQueue

    init(path: String) throws {
        self.path = path
        do {
            queue = try LiveFile.open(path)
        } catch {
            throw ReindexError.inconsistent(detail: "\(path): cannot open it read-only: \(LiveFile.describe(error)) — check its permissions, or run `reindex verify`")
        }
    }

    deinit { try? queue.close() }

    func meta() throws -> VectorFileMeta {
        do {
            return try queue.read { db in try VectorFileMeta.read(db, schema: "main") }
        } catch {
            throw ReindexError.inconsistent(detail: "\(path): cannot read its meta table: \(LiveFile.describe(error)) — run `reindex verify`")
        }
    }

    /// A scope on `items` (`AttributeFilter.sql`): a WHERE clause and its arguments; nil for every item.
    typealias Scope = (sql: String, arguments: StatementArguments)

    /// Exact top-k over every stored vector in scope (`ExactRanker`), streamed in id order.
    func rank(query: [Float], k: Int, dimensions d: Int, scope: Scope? = nil) throws -> [(id: Int64, score: Float)] {
        let bytes = VectorFileFormat.embeddingBytes(dimensions: d)
        return try queue.read { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT id, embedding FROM items \(scope.map { "WHERE \($0.sql) " } ?? "")ORDER BY id",
                                           arguments: scope?.arguments ?? [])
            return try ExactRanker.topK(query: query, k: k) { matrix, ids in
                let capacity = matrix.count / d
                var n = 0
                while n < capacity, let row = try rows.next() {
                    let stored = try row.withUnsafeData(atIndex: 1) { data -> Bool in
                        guard let data, data.count == bytes else { return false }
                        data.withUnsafeBytes { src in
                            UnsafeMutableRawPointer(matrix.baseAddress! + n * d).copyMemory(from: src.baseAddress!, byteCount: bytes)
                        }
                        return true
                    }
                    guard stored else {
                        throw ReindexError.inconsistent(detail: "item \(row[0] as Int64) does not have \(d) float32 dimensions (got another size) — run `reindex verify`")
                    }
                    ids.append(row[0])
                    n += 1
                }
                return n
            }
        }
    }

    /// Where an item comes from: its row, its chunk and the chunk's span.
    struct Key: Hashable {
        var source: String
        var sourceID: String
        var chunk: Int
        var start: Int
        var end: Int
    }

    /// An item's key and its attribute values, in `attributes`' order.
    func key(of id: Int64, attributes: [AttributeColumn] = []) throws -> (Key, [DatabaseValue])? {
        let extra = attributes.map { ", \($0.name)" }.joined()
        return try queue.read { db in
            try Row.fetchOne(db, sql: "SELECT source, source_id, chunk, span_start, span_end\(extra) FROM items WHERE id = ?", arguments: [id])
                .map { row in (Key(source: row[0], sourceID: row[1], chunk: row[2], start: row[3], end: row[4]),
                               (0..<attributes.count).map { row[5 + $0] as DatabaseValue }) }
        }
    }

    /// The `limit` best rows for a keyword query, each by its best chunk,
    /// best first: bm25 ascending (more negative is better), ties by
    /// `(source, source_id)`. The score returned is −bm25, so higher is
    /// better on both sides of a hybrid search.
    ///
    /// `coverage` > 0 keeps only chunks holding query terms that carry at
    /// least that share of the query's IDF weight (the IDF of bm25, counted
    /// over chunks), among the `candidates` best chunks: the keyword side of
    /// a hybrid search, where a chunk that shares only common words with a
    /// paraphrase is noise (docs/format.md, "Querying keywords"). The SQL is
    /// the documented consumer SQL's keyword side.
    func keywordRank(_ query: KeywordQuery, coverage: Double = 0, candidates: Int = 100, limit: Int, scope: Scope? = nil,
                     attributes: [AttributeColumn] = []) throws -> [(Key, Double, [DatabaseValue])] {
        // Attributes under aliases no attribute or alias of this query can have (a name has no dot).
        let extra = attributes.map { ", \"a.\($0.name)\"" }.joined()
        let inner = attributes.map { ", i.\($0.name) AS \"a.\($0.name)\"" }.joined()
        let t = KeywordIndex.table
        let inScope = scope.map { " AND \($0.sql)" } ?? ""
        // bm25() only in the query that has the MATCH (a materialized CTE: SQLite may not merge
        // it into the window or the aggregate); the window keeps each row's best chunk.
        var with = """
            WITH kw_matches AS MATERIALIZED (
                SELECT \(t).rowid AS kw_id, bm25(\(t)) AS kw_score FROM \(t) JOIN items i ON i.id = \(t).rowid
                WHERE \(t) MATCH ?\(inScope) ORDER BY kw_score\(coverage > 0 ? " LIMIT ?" : ""))
            """
        var arguments: StatementArguments = [query.match] + (scope?.arguments ?? [])
        var from = "kw_matches"
        if coverage > 0 {
            arguments += [candidates, query.termsJSON, coverage]
            with += """
                ,
                kw_terms AS (SELECT value AS kw_term FROM json_each(?)),
                kw_weights AS (
                    SELECT kw_term, ln((kw_n - kw_df + 0.5) / (kw_df + 0.5) + 1) AS kw_idf
                    FROM (SELECT kw_term, (SELECT count(*) FROM \(t) WHERE \(t) MATCH kw_terms.kw_term) AS kw_df FROM kw_terms),
                         (SELECT count(*) AS kw_n FROM \(t))),
                kw_covered AS (
                    SELECT kw_id, kw_score FROM kw_matches m
                    WHERE (SELECT sum(kw_idf) FROM kw_weights w
                           WHERE EXISTS (SELECT 1 FROM \(t) WHERE \(t) MATCH w.kw_term AND \(t).rowid = m.kw_id))
                          >= ? * (SELECT sum(kw_idf) FROM kw_weights))
                """
            from = "kw_covered"
        }
        arguments += [limit]
        return try queue.read { db in
            let rows = try Row.fetchAll(db, sql: """
                \(with)
                SELECT source, source_id, chunk, span_start, span_end, kw_score\(extra) FROM (
                    SELECT i.source, i.source_id, i.chunk, i.span_start, i.span_end\(inner), m.kw_score,
                           row_number() OVER (PARTITION BY i.source, i.source_id ORDER BY m.kw_score, i.chunk) AS kw_best
                    FROM \(from) m JOIN items i ON i.id = m.kw_id)
                WHERE kw_best = 1 ORDER BY kw_score, source, source_id LIMIT ?
                """, arguments: arguments)
            return rows.map { row in
                (Key(source: row[0], sourceID: row[1], chunk: row[2], start: row[3], end: row[4]), -(row[5] as Double),
                 (0..<attributes.count).map { row[6 + $0] as DatabaseValue })
            }
        }
    }

    func hasKeywords() throws -> Bool {
        try queue.read { db in try KeywordIndex.exists(db, schema: "main") }
    }

    func itemCount(scope: Scope? = nil) throws -> Int {
        try queue.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM items\(scope.map { " WHERE \($0.sql)" } ?? "")", arguments: scope?.arguments ?? []) ?? 0
        }
    }
}
