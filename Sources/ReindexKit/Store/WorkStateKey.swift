import Foundation

/// The keys of a work file's private `work_state` table: who the work
/// belongs to (`fingerprint`, `job`) and which run it is.
enum WorkStateKey: String, CaseIterable {
    case fingerprint
    case runID = "run_id"
    case startedAt = "started_at"
    case mode
    case job
    /// How a work file cloned from the live file was made (`FileClone.Method`);
    /// absent for a file built from nothing.
    case base
    /// The `run_id` of the live file a clone was copied from.
    case baseRunID = "base_run_id"
    /// Rows deleted from `vec_items` since it was last built (dead slots
    /// sqlite-vec does not reclaim): the live file's figure plus this run's.
    case vecDeadRows = "vec_dead_rows"
}
