import Foundation

/// The keys of a work file's private `work_state` table: who the work
/// belongs to (`fingerprint`, `job`) and which run it is.
enum WorkStateKey: String, CaseIterable {
    case fingerprint
    case runID = "run_id"
    case startedAt = "started_at"
    case mode
    case job
}
