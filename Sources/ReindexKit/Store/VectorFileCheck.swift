import Foundation
import GRDB

/// The checks every vector file must pass: before it is published (the work
/// file, schema `main`) and when `verify` inspects the live one (schema
/// `live`). One pass over the vectors checks shape and norm together.
enum VectorFileCheck {
    /// `PRAGMA quick_check` of `schema`: `["ok"]` or up to five problems.
    static func quickCheck(_ db: Database, schema: String) throws -> [String] {
        try String.fetchAll(db, sql: "PRAGMA \(schema).quick_check(5)")
    }

    /// What one pass over every vector found.
    struct Vectors {
        var count = 0
        /// Items whose blob is not `dimensions` float32 values: count and a few labels.
        var wrongShape = SourceDiff.IDList()
        /// Items that are not finite unit vectors: count and a few labels.
        var notUnit = SourceDiff.IDList()
    }

    /// Reads every embedding of `schema.items` once. Labels are
    /// `id N (source/source_id)`, at most `sample` of each kind.
    /// `only`: SQL selecting the ids to read (the clone path's delta); every item without.
    static func vectors(_ db: Database, schema: String, dimensions d: Int, sample: Int = 5, only: String? = nil) throws -> Vectors {
        var found = Vectors()
        var buffer = [Float](repeating: 0, count: d)
        let rows = try Row.fetchCursor(db, sql: """
            SELECT id, source, source_id, embedding, typeof(embedding) = 'blob' AND length(embedding) = ?
            FROM \(schema).items \(only.map { "WHERE id IN (\($0)) " } ?? "")ORDER BY id
            """, arguments: [VectorFileFormat.embeddingBytes(dimensions: d)])
        func label(_ row: Row) -> String { "id \(row[0] as Int64) (\(row[1] as String)/\(row[2] as String))" }
        while let row = try rows.next() {
            found.count += 1
            guard row[4] as Bool else {
                found.wrongShape.count += 1
                if found.wrongShape.ids.count < sample { found.wrongShape.ids.append(label(row)) }
                continue
            }
            let unit = try row.withUnsafeData(atIndex: 3) { data -> Bool in
                guard let data else { return false }
                buffer.withUnsafeMutableBytes { dst in data.withUnsafeBytes { dst.copyMemory(from: $0) } }
                for x in buffer where !x.isFinite { return false }
                let norm = buffer.withUnsafeBufferPointer { BLAS.norm($0) }
                return norm.isFinite && abs(norm - 1) <= 1e-4
            }
            if !unit {
                found.notUnit.count += 1
                if found.notUnit.ids.count < sample { found.notUnit.ids.append(label(row)) }
            }
        }
        return found
    }

    /// How the chunks of each row cover its text.
    struct Coverage {
        /// Source rows that have items.
        var rows = 0
        /// Rows whose chunks do not cover their text: numbered 0…n-1, the
        /// first starting at 0, each starting no later than the previous one
        /// ends, the last ending at the text's end (rows still in `scan.rows`).
        var gaps = SourceDiff.IDList()
    }

    /// Reads every item's span once (`scan.rows` must be attached: it gives
    /// the texts' lengths, less the prefix's `prefixLength` scalars).
    /// `only`: SQL selecting the `(source, source_id)` rows to check (the
    /// clone path's delta; `rows` is then not counted); every row without.
    static func coverage(_ db: Database, schema: String, prefixLength: Int, sample: Int = 5, only: String? = nil) throws -> Coverage {
        var found = Coverage()
        if only == nil { found.rows = try rowCount(db, schema: schema) }
        let restrict = only.map { " WHERE (source, source_id) IN (\($0))" } ?? ""
        let bad = """
            WITH ordered AS (
                SELECT source, source_id, chunk, span_start, span_end,
                       lag(span_end) OVER (PARTITION BY source, source_id ORDER BY chunk) AS prev_end,
                       count(*) OVER (PARTITION BY source, source_id) AS n
                FROM \(schema).items\(restrict))
            SELECT DISTINCT o.source, o.source_id FROM ordered o
            LEFT JOIN scan.rows r ON r.source = o.source AND r.source_id = o.source_id
            WHERE (o.chunk = 0 AND o.span_start != 0) OR o.chunk >= o.n OR o.span_end <= o.span_start
               OR (o.prev_end IS NOT NULL AND o.span_start > o.prev_end)
               OR (o.chunk = o.n - 1 AND r.source IS NOT NULL AND o.span_end != length(r.input) - \(prefixLength))
            """
        found.gaps.count = try Int.fetchOne(db, sql: "SELECT count(*) FROM (\(bad))") ?? 0
        if found.gaps.count > 0 {
            found.gaps.ids = try Row.fetchAll(db, sql: "\(bad) ORDER BY 1, 2 LIMIT \(sample)").map { "\($0[0] as String)/\($0[1] as String)" }
        }
        return found
    }

    /// Source rows that have items.
    static func rowCount(_ db: Database, schema: String) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT count(*) FROM (SELECT 1 FROM \(schema).items GROUP BY source, source_id)") ?? 0
    }

    /// Tables of `schema`.
    static func tables(_ db: Database, schema: String) throws -> Set<String> {
        Set(try String.fetchAll(db, sql: "SELECT name FROM \(schema).sqlite_schema WHERE type = 'table'"))
    }
}
