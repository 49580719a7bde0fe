import Foundation
import GRDB

/// How `search --mode hybrid` fuses the vector and the keyword rankings:
/// reciprocal rank fusion (Cormack et al., 2009). A row scores
/// `Σ weight / (k + rank)` over the sides that ranked it (ranks from 1),
/// so it needs no calibration between cosine similarities and bm25 scores,
/// and a row both sides found beats one only a side found. Ties go to
/// `(source, id)` order, as in the consumer SQL of docs/format.md.
public struct HybridFusion: Sendable, Equatable {
    /// The RRF constant: larger flattens the difference between ranks.
    public var k: Double = 60
    public var vectorWeight: Double = 1
    public var keywordWeight: Double = 1
    /// The share of the query's IDF weight a chunk's terms must carry to
    /// count on the keyword side (0: every match counts). With plain OR
    /// matching, a paraphrase's common words matched hundreds of chunks
    /// that then outranked the vector side's answer: recall@10 on
    /// paraphrases fell from 98.3% (vector) to 81.7%; at 0.5 hybrid equals
    /// vector on paraphrases and keeps 98.8% on identifiers
    /// (fixtures/hybrid, docs/performance.md).
    public var keywordCoverage: Double = 0.5

    public init(k: Double = 60, vectorWeight: Double = 1, keywordWeight: Double = 1, keywordCoverage: Double = 0.5) {
        self.k = k
        self.vectorWeight = vectorWeight
        self.keywordWeight = keywordWeight
        self.keywordCoverage = keywordCoverage
    }

    /// How many rows each side ranks before fusing for `k` results: a row
    /// past this depth on both sides could not reach the top `k`.
    public static func depth(for k: Int) -> Int { max(2 * k, 50) }

    /// One side's answer: its rows, best first.
    struct Ranked {
        var key: LiveFileReader.Key
        var score: Double
        var values: [DatabaseValue]
    }

    /// One fused row: its fused score and each side's rank (1-based) and score.
    struct Fused {
        var key: LiveFileReader.Key
        var score: Double
        var values: [DatabaseValue]
        var vector: SearchHit.Side?
        var keyword: SearchHit.Side?
    }

    /// The `limit` best rows of both rankings, fused. A row's chunk is the
    /// one of the side that ranked it higher (the vector side on a tie).
    func fuse(vector: [Ranked], keyword: [Ranked], limit: Int) -> [Fused] {
        var rows: [String: Fused] = [:]
        func id(_ key: LiveFileReader.Key) -> String { key.source + "\u{0}" + key.sourceID }
        for (i, r) in vector.enumerated() {
            rows[id(r.key)] = Fused(key: r.key, score: vectorWeight / (k + Double(i + 1)), values: r.values,
                                    vector: SearchHit.Side(rank: i + 1, score: r.score), keyword: nil)
        }
        for (i, r) in keyword.enumerated() {
            let side = SearchHit.Side(rank: i + 1, score: r.score)
            let share = keywordWeight / (k + Double(i + 1))
            if var row = rows[id(r.key)] {
                row.score += share
                row.keyword = side
                if let v = row.vector, side.rank < v.rank { row.key = r.key }
                rows[id(r.key)] = row
            } else {
                rows[id(r.key)] = Fused(key: r.key, score: share, values: r.values, vector: nil, keyword: side)
            }
        }
        return rows.values.sorted {
            $0.score != $1.score ? $0.score > $1.score
                : ($0.key.source, $0.key.sourceID) < ($1.key.source, $1.key.sourceID)
        }.prefix(limit).map { $0 }
    }
}
