import Foundation

/// Exact nearest neighbours by brute force: the `k` stored vectors with the
/// highest dot product with the query (cosine similarity, both being unit
/// vectors), best first. It needs no index, so it is also the reference the
/// application's KNN queries are checked against.
public enum ExactRanker {
    /// `next` fills up to `blockRows` row-major vectors into the matrix,
    /// appends their ids and returns how many it wrote (0 at the end): memory
    /// stays at one block (4096 × 384 floats is 6 MB) whatever the file's
    /// size, and each block is scored with one cblas_sgemv.
    public static func topK(query: [Float], k: Int, blockRows: Int = 4096,
                            next: (_ matrix: UnsafeMutableBufferPointer<Float>, _ ids: inout [Int64]) throws -> Int) rethrows -> [(id: Int64, score: Float)] {
        let d = query.count
        precondition(d > 0 && blockRows > 0)
        var best = TopK(k: k)
        var matrix = [Float](repeating: 0, count: blockRows * d)
        var scored = [Float](repeating: 0, count: blockRows)
        var ids: [Int64] = []
        ids.reserveCapacity(blockRows)
        while true {
            ids.removeAll(keepingCapacity: true)
            let rows = try matrix.withUnsafeMutableBufferPointer { try next($0, &ids) }
            guard rows > 0 else { break }
            precondition(rows <= blockRows && ids.count == rows)
            matrix.withUnsafeBufferPointer { m in
                query.withUnsafeBufferPointer { q in
                    scored.withUnsafeMutableBufferPointer { s in
                        BLAS.scores(matrix: m, rows: rows, dimensions: d, query: q, into: s)
                    }
                }
            }
            for i in 0..<rows { best.offer(score: scored[i], id: ids[i]) }
        }
        return best.sorted()
    }
}
