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

    /// The `limit` best rows for an FTS5 MATCH expression (`KeywordQuery`),
    /// each by its best chunk, best first: bm25 ascending (more negative is
    /// better), ties by `(source, source_id)`. The score returned is −bm25,
    /// so higher is better on both sides of a hybrid search.
    func keywordRank(match: String, limit: Int, scope: Scope? = nil, attributes: [AttributeColumn] = []) throws -> [(Key, Double, [DatabaseValue])] {
        let extra = attributes.map { ", \($0.name)" }.joined()
        let inner = attributes.map { ", i.\($0.name)" }.joined()
        return try queue.read { db in
            // bm25() only where the MATCH is (a materialized CTE: SQLite may not merge it into
            // the window); the window keeps each row's best chunk.
            let rows = try Row.fetchAll(db, sql: """
                WITH kw_matches AS MATERIALIZED (
                    SELECT rowid AS kw_id, bm25(\(KeywordIndex.table)) AS kw_score FROM \(KeywordIndex.table) WHERE \(KeywordIndex.table) MATCH ?)
                SELECT source, source_id, chunk, span_start, span_end, kw_score\(extra) FROM (
                    SELECT i.source, i.source_id, i.chunk, i.span_start, i.span_end\(inner), m.kw_score, row_number() OVER (PARTITION BY i.source, i.source_id ORDER BY m.kw_score, i.chunk) AS kw_best
                    FROM kw_matches m JOIN items i ON i.id = m.kw_id\(scope.map { " WHERE \($0.sql)" } ?? ""))
                WHERE kw_best = 1 ORDER BY kw_score, source, source_id LIMIT ?
                """, arguments: [match] + (scope?.arguments ?? []) + [limit])
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
