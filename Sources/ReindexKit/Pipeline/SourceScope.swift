import Foundation

/// How a run reads one source. A source with a `changed-column` is read in
/// part — the rows at or past the watermark the live file recorded, plus
/// every id to find deletions — only when the run will apply its delta to
/// a clone of that file, which holds every other row as it was. Everything
/// else reads every row: a full or resumed run, a base that cannot be
/// cloned, a keyword index to build, and the periodic full check, which is
/// also the full hash scan that catches rows changed without the column
/// moving (they are counted and reported).
struct SourceScope: Sendable {
    var filter: ScanFilter
    /// Why a source with a `changed-column` is read whole; nil otherwise.
    var reason: String? = nil
    /// The run publishes even without a change: the full check is due (so
    /// its schedule starts again), or the live file has no watermark for the
    /// column yet (so the next run can read in part).
    var mustPublish = false

    /// Each source's scope for a run planned against `plan.live`.
    static func decide(job: JobConfig, plan: Plan, resumed: Bool, index: VecIndex.Plan, schedule: FullCheckSchedule) -> [String: SourceScope] {
        var scopes: [String: SourceScope] = [:]
        let marks = Watermark.decode(plan.live?[.watermarks])
        for source in job.sources {
            guard let column = source.changedColumn else { continue }
            let old = marks[source.name].flatMap { $0.column == column ? $0 : nil }
            let whole: (reason: String, mustPublish: Bool)?
            if plan.mode != .incremental || plan.live == nil {
                whole = ("full run", false)
            } else if resumed {
                whole = ("resuming an interrupted run", false)
            } else if old == nil {
                whole = ("the live file has no watermark for \(column)", true)
            } else if let reason = CloneStage.metaReason(live: plan.live!, index: index) {
                whole = (reason, false)
            } else if KeywordSettings.decode(plan.live?[.keywords]) != job.keywords && job.keywords != nil {
                whole = ("the keyword index is built anew", false)
            } else if schedule.due(live: plan.live) {
                whole = ("the periodic full check is due", true)
            } else {
                whole = nil
            }
            if let whole {
                scopes[source.name] = SourceScope(filter: old.map { .allFlagging($0) } ?? .all, reason: whole.reason, mustPublish: whole.mustPublish)
            } else {
                scopes[source.name] = SourceScope(filter: .changedSince(old!))
            }
        }
        return scopes
    }
}
