import CBLAS

/// The job's door to OpenBLAS: the only file that imports CBLAS, so raw
/// pointers into BLAS never leave it.
public enum BLAS {
    /// Vectors are short (hundreds of floats): OpenBLAS's thread pool would
    /// only add wake-up latency and fight the HTTP thread for the 2 cores.
    public static func configure() {
        openblas_set_num_threads(1)
    }

    /// The L2 norm (`cblas_snrm2`).
    public static func norm(_ v: UnsafeBufferPointer<Float>) -> Float {
        cblas_snrm2(Int32(v.count), v.baseAddress, 1)
    }

    /// v *= alpha (`cblas_sscal`).
    static func scale(_ v: UnsafeMutableBufferPointer<Float>, by alpha: Float) {
        cblas_sscal(Int32(v.count), alpha, v.baseAddress, 1)
    }

    /// scores[i] = dot(matrix row i, query) for `rows` row-major vectors (`cblas_sgemv`).
    public static func scores(matrix: UnsafeBufferPointer<Float>, rows: Int, dimensions: Int,
                              query: UnsafeBufferPointer<Float>, into scores: UnsafeMutableBufferPointer<Float>) {
        precondition(matrix.count >= rows * dimensions && scores.count >= rows && query.count == dimensions)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(rows), Int32(dimensions), 1,
                    matrix.baseAddress, Int32(dimensions), query.baseAddress, 1, 0, scores.baseAddress, 1)
    }
}
