import Foundation

extension RunSummary {
    /// The summary as the plan leaves it: per-source scan and diff counts.
    /// A no-change run reports just this; a publishing run adds what the
    /// later stages did with `record(reuse:accounting:counters:)`.
    init(output: String, plan: Plan, scans: ScanResult, checkpoint: Checkpoint, counters: RunCounters) {
        self.init(mode: plan.mode, output: output)
        fullReason = plan.fullReason
        chunking = plan.chunking.summary
        resumed = checkpoint.resumed
        runID = checkpoint.runID
        requests = counters["requests"]
        longestReadMs = scans.longestRead.seconds * 1000
        sources = plan.sources.map { p in
            var s = SourceSummary(name: p.name)
            s.scanned = p.scanned
            s.skipped = p.skipped
            s.truncated = p.truncated
            s.unchanged = plan.isFull ? 0 : p.unchanged
            s.added = plan.isFull ? p.eligible : p.added
            s.changed = plan.isFull ? 0 : p.changed
            s.removed = p.removed
            s.attributesChanged = plan.isFull ? 0 : p.attributesChanged
            s.readSince = p.readSince
            s.ids = scans.counts[p.name]?.ids ?? 0
            s.missedByChangedColumn = p.missedByChangedColumn
            return s
        }
    }

    /// Adds what reuse, embed and verify did, per source.
    mutating func record(reuse: Reuse, accounting: WorkFile.Accounting, counters: RunCounters) {
        requests = counters["requests"]
        retries = counters["retries"]
        splitChunks = counters["split_chunks"]
        chunkedRows = reuse.chunkedRows
        failures = accounting.failures
        let failedBySource = Dictionary(grouping: accounting.failures, by: \.source).mapValues(\.count)
        for i in sources.indices {
            let name = sources[i].name
            let items = accounting.itemsBySource[name] ?? 0
            sources[i].rows = accounting.rowsBySource[name] ?? 0
            sources[i].truncated += counters["truncated:\(name)"]
            sources[i].reused = reuse.reusedBySource[name] ?? 0
            sources[i].carriedOver = min(reuse.carriedBySource[name] ?? 0, items - sources[i].reused)
            sources[i].embedded = items - sources[i].reused - sources[i].carriedOver
            sources[i].failed = failedBySource[name] ?? 0
        }
    }

    /// Stamps the stage times and the duration so far.
    func finished(clock: StageClock) -> RunSummary {
        var s = self
        s.stages = clock.seconds
        s.durationSeconds = clock.elapsed
        return s
    }

    /// The `runs` row of the new file.
    func record(startedAt: Int64) -> RunRecord {
        RunRecord(runID: runID, mode: mode.rawValue, fullReason: fullReason, startedAt: startedAt,
                  finishedAt: Int64(Date().timeIntervalSince1970), scanned: scanned, skipped: skipped,
                  embedded: embedded, reused: reused, removed: removed, failed: failed, requests: requests,
                  durationSeconds: durationSeconds, itemsPerSecond: embedded > 0 ? itemsPerSecond : nil)
    }
}
