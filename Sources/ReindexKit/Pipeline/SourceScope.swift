import Foundation

/// How a run reads one source. In part only when the run will apply its
/// delta to a clone of the live file, which holds every other row as it
/// was: a source with a `changed-column` reads the rows at or past the
/// watermark the file recorded, plus every id to find deletions; any other
/// source (or one whose file has no watermark yet) is hashed in SQL by an
/// SQLite primary (`PrimarySource.stageHashes`) and only the rows whose hash
/// or attributes differ are read in full. Everything else reads every row
/// in Swift: a full or resumed run, a base that cannot be cloned, a keyword
/// index to build, a PostgreSQL primary, and the periodic full check, which
/// is also the full hash scan that catches rows changed without the column
/// moving (they are counted and reported).
///
/// Tried and measured (1M messages, `farm-bench`, 2026-12-01): staging in
/// full only the rows that differ from the live file, looked up page by
/// page from Swift, cut the bytes a no-change run writes from 0.33 GB to
/// 80 MB but made it 16% slower (11.6 s against 10.0 s, median of 5
/// pairs): decoding every row into Swift values cost more than the staging
/// saved. The hash pass keeps the rows inside SQLite.
struct SourceScope: Sendable {
    /// How a source read whole is read (`.all`, or `.allFlagging` against the live file's watermark).
    var filter: ScanFilter = .all
    /// The live file's watermark when the source is read in part; nil when it is read whole.
    var since: Watermark? = nil
    /// Whether the source is hashed in SQL and read in part (when the primary can).
    var hashed = false
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
            guard let column = source.changedColumn else {
                if wholeRun == nil { scopes[source.name] = SourceScope(hashed: true) }
                continue
            }
            let old = marks[source.name].flatMap { $0.column == column ? $0 : nil }
            let whole = wholeRun ?? (old == nil ? ("the live file has no watermark for \(column)", true) : nil)
            if let whole {
                scopes[source.name] = SourceScope(filter: old.map { .allFlagging($0) } ?? .all, hashed: wholeRun == nil,
                                                  reason: whole.reason, mustPublish: whole.mustPublish)
            } else {
                scopes[source.name] = SourceScope(since: old!)
            }
        }
        return scopes
    }
}
