import Foundation
import Logging

/// index: builds `vec_items` in the work file from its items when the
/// sqlite-vec extension is available (`VecIndex`).
struct IndexStage {
    let plan: VecIndex.Plan
    let logger: Logger

    func run(work: WorkFile) throws -> VecIndex.Built {
        try work.buildIndex(plan, logger: logger)
    }
}
