import Foundation
import Logging

/// The sqlite-vec `vec0` index of a vector file (`vec_items`). Placeholder
/// seam: the index stage calls `build` between embed and verify.
enum VecIndex {
    /// Builds or refreshes `vec_items` in the work file; returns a one-line note for the summary.
    static func build(store: VectorStore, job: JobConfig, options: RunOptions, logger: Logger) throws -> String? {
        nil
    }
}
