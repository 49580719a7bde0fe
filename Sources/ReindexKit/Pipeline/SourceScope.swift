import Foundation

/// How a run reads one source with a `changed-column`: in part — the rows
/// at or past the watermark the live file recorded, plus every id to find
/// deletions — only when the run will apply its delta to a clone of that
/// file, which holds every other row as it was. Everything else reads every
/// row: a full or resumed run, a base that cannot be cloned, a keyword index
/// to build, and the periodic full check, which is also the full hash scan
/// that catches rows changed without the column moving (they are counted
/// and reported). A source without the key is always read whole.
///
/// Tried and measured (1M messages, `farm-bench`, 2026-12-01): staging in
/// full only the rows that differ from the live file, looked up page by
/// page, cut the bytes a no-change run writes from 0.33 GB to 80 MB but
/// made it 16% slower (11.6 s against 10.0 s, median of 5 pairs): the
/// lookups cost more than the staging they save. Every row is staged.
struct SourceScope: Sendable {
    /// How a source read whole is read (`.all`, or `.allFlagging` against the live file's watermark).
    var filter: ScanFilter = .all
    /// The live file's watermark when the source is read in part; nil when it is read whole.
    var since: Watermark? = nil
    /// Why a source with a `changed-column` is read whole; nil otherwise.
    var reason: String? = nil
    /// The run publishes even without a change: the full check is due (so
    /// its schedule starts again), or the live file has no watermark for the
    /// column yet (so the next run can read in part).
    var mustPublish = false

    /// Each source's scope for a run planned against `plan.live`.
    static func decide(job: JobConfig, plan: Plan, resumed: Bool, index: VecIndex.Plan, schedule: FullCheckSchedule) -> [String: SourceScope] {
        // Why no source can be read in part; nil when every one with a watermark can.
        let wholeRun: (reason: String, mustPublish: Bool)?
        if plan.mode != .incremental || plan.live == nil {
            wholeRun = ("full run", false)
        } else if resumed {
            wholeRun = ("resuming an interrupted run", false)
        } else if let reason = CloneStage.metaReason(live: plan.live!, index: index) {
            wholeRun = (reason, false)
        } else if KeywordSettings.decode(plan.live?[.keywords]) != job.keywords && job.keywords != nil {
            wholeRun = ("the keyword index is built anew", false)
        } else if schedule.due(live: plan.live) {
            wholeRun = ("the periodic full check is due", true)
        } else {
            wholeRun = nil
        }
        var scopes: [String: SourceScope] = [:]
        let marks = Watermark.decode(plan.live?[.watermarks])
        for source in job.sources {
            guard let column = source.changedColumn else { continue }
            let old = marks[source.name].flatMap { $0.column == column ? $0 : nil }
            let whole = wholeRun ?? (old == nil ? ("the live file has no watermark for \(column)", true) : nil)
            if let whole {
                scopes[source.name] = SourceScope(filter: old.map { .allFlagging($0) } ?? .all, reason: whole.reason, mustPublish: whole.mustPublish)
            } else {
                scopes[source.name] = SourceScope(since: old!)
            }
        }
        return scopes
    }
}
