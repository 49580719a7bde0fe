import Foundation
import Logging

/// What the work file holds before embedding starts.
struct Reuse: Sendable {
    /// Items per source after reconciling an interrupted run's work (copied or embedded).
    var carriedBySource: [String: Int]
    /// Items per source copied from the live file.
    var reusedBySource: [String: Int]
}

/// reuse: reconciles an interrupted run's work with the fresh scan (items
/// whose row changed or vanished are dropped; a full run also drops what an
/// incremental attempt copied), then copies every unchanged vector from the
/// live file in set-based SQL.
struct ReuseStage {
    let logger: Logger

    func run(work: WorkFile, plan: Plan) throws -> Reuse {
        let carried = try work.reconcile(dropCopied: plan.isFull)
        let reused = plan.isFull ? try work.reusedBySource() : try work.reuseFromLive()
        try work.setWorkState([.mode: plan.mode.rawValue])
        logger.info("reuse", metadata: ["carried_over": "\(carried.values.reduce(0, +))", "reused": "\(reused.values.reduce(0, +))"])
        return Reuse(carriedBySource: carried, reusedBySource: reused)
    }
}
