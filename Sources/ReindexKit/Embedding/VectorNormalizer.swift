import CBLAS
import Foundation

/// All BLAS work of the job: L2 normalization of model output, norm checks
/// during verify, and dot-product scoring for `search`. The only file that
/// imports CBLAS.
public enum VectorNormalizer {
    /// Vectors are short (hundreds of floats): OpenBLAS's thread pool would
    /// only add wake-up latency and fight the HTTP thread for the 2 cores.
    public static func configure() {
        openblas_set_num_threads(1)
    }

    public enum Problem: Error, Equatable {
        case nonFinite
        case zero
    }

    /// Normalizes one vector in place to unit L2 norm.
    public static func normalize(_ v: UnsafeMutableBufferPointer<Float>) throws(Problem) {
        let n = Int32(v.count)
        let norm = cblas_snrm2(n, v.baseAddress, 1)
        guard norm.isFinite else { throw .nonFinite }
        guard norm > 0 else { throw .zero }
        cblas_sscal(n, 1 / norm, v.baseAddress, 1)
        // snrm2 may miss a NaN on some kernels; one pass costs nanoseconds.
        for x in v where !x.isFinite { throw .nonFinite }
    }

    /// The L2 norm of a vector read from a blob of little-endian float32.
    public static func norm(_ v: UnsafeBufferPointer<Float>) -> Float {
        cblas_snrm2(Int32(v.count), v.baseAddress, 1)
    }

    /// scores[i] = dot(matrix row i, query) for `rows` row-major vectors.
    public static func scores(matrix: UnsafeBufferPointer<Float>, rows: Int, dimensions: Int,
                              query: UnsafeBufferPointer<Float>, into scores: UnsafeMutableBufferPointer<Float>) {
        precondition(matrix.count >= rows * dimensions && scores.count >= rows && query.count == dimensions)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(rows), Int32(dimensions), 1,
                    matrix.baseAddress, Int32(dimensions), query.baseAddress, 1, 0, scores.baseAddress, 1)
    }

    /// The `k` stored vectors with the highest dot product with `query`
    /// (cosine similarity, both being unit vectors), best first. `next` fills
    /// up to `blockRows` row-major vectors into the matrix, appends their ids
    /// and returns how many it wrote (0 at the end): memory stays at one
    /// block (4096 × 384 floats is 6 MB) whatever the file's size, and each
    /// block is scored with one cblas_sgemv.
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
                        scores(matrix: m, rows: rows, dimensions: d, query: q, into: s)
                    }
                }
            }
            for i in 0..<rows { best.offer(score: scored[i], id: ids[i]) }
        }
        return best.sorted()
    }
}
