import Foundation

/// When a run on the clone path checks every vector of its new file rather
/// than only what it changed: after `full-check-runs` publishing runs that
/// did not, or once the last full check is `full-check-hours` old, as the
/// live file's meta records them (`full_check_at`, `runs_since_full_check`).
/// A file built from nothing is always checked in full. Only publishing runs
/// count, so a run that changes nothing writes nothing.
struct FullCheckSchedule {
    let everyRuns: Int
    let afterHours: Double

    init(job: JobConfig) {
        self.init(everyRuns: job.fullCheckRuns, afterHours: job.fullCheckHours)
    }

    init(everyRuns: Int, afterHours: Double) {
        self.everyRuns = everyRuns
        self.afterHours = afterHours
    }

    /// Whether this clone-path run is due for a full check.
    func due(live: VectorFileMeta?, now: Date = Date()) -> Bool {
        guard let live, let at = live[.fullCheckAt].flatMap({ ISO8601DateFormatter().date(from: $0) }),
              let runs = live[.runsSinceFullCheck].flatMap(Int.init) else { return true }
        return runs + 1 >= everyRuns || now.timeIntervalSince(at) >= afterHours * 3600
    }

    /// Whether a run checks the live file whole before building on it
    /// (`LiveFile.compatibility`): when the full check is due, and when the
    /// run cannot take the clone path anyway (another format or index), so it
    /// reads every vector it reuses.
    func checksBaseWhole(live: VectorFileMeta, index: VecIndex.Plan) -> Bool {
        due(live: live) || live[.format] != VectorFileFormat.version || !VecIndex.liveMatches(live, plan: index)
    }

    /// The meta keys the new file records.
    func meta(fullCheck: Bool, live: VectorFileMeta?, now: Date = Date()) -> [MetaKey: String] {
        if fullCheck { return [.fullCheckAt: ISO8601DateFormatter().string(from: now), .runsSinceFullCheck: "0"] }
        let runs = live?[.runsSinceFullCheck].flatMap(Int.init) ?? 0
        return [.fullCheckAt: live?[.fullCheckAt] ?? ISO8601DateFormatter().string(from: now), .runsSinceFullCheck: String(runs + 1)]
    }
}
