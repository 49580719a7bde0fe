import Foundation

/// L2 normalization of model output (DESIGN.md invariant 6): every stored
/// vector is finite with unit norm, so cosine similarity is a dot product.
public enum VectorNormalizer {
    public enum Problem: Error, Equatable {
        case nonFinite
        case zero
    }

    /// Normalizes one vector in place to unit L2 norm.
    public static func normalize(_ v: UnsafeMutableBufferPointer<Float>) throws(Problem) {
        let norm = BLAS.norm(UnsafeBufferPointer(v))
        guard norm.isFinite else { throw .nonFinite }
        guard norm > 0 else { throw .zero }
        BLAS.scale(v, by: 1 / norm)
        // snrm2 may miss a NaN on some kernels; one pass costs nanoseconds.
        for x in v where !x.isFinite { throw .nonFinite }
    }
}
