import Foundation
import Logging

/// index: builds `vec_items` in the work file from its items when the
/// sqlite-vec extension is available (`VecIndex`).
struct IndexStage {
    let plan: VecIndex.Plan
    /// The job's attributes: partition keys, metadata and auxiliary columns of `vec_items`.
    var attributes: [AttributeColumn] = []
    let logger: Logger

    func run(work: WorkFile) throws -> VecIndex.Built {
        try work.buildIndex(plan, attributes: attributes, logger: logger)
    }
}
