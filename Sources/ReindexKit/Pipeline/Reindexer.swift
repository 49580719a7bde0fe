import Foundation
import GRDB
import Logging

/// The pipeline of DESIGN.md: scan → plan → reuse → embed → index → verify →
/// publish. It only puts the stages in order and passes each one's value to
/// the next; every decision and every statement lives in a stage or in the
/// store.
public final class Reindexer: Sendable {
    public let job: JobConfig
    public let options: RunOptions
    let logger: Logger
    let stop: StopSignal
    let environment: [String: String]

    public init(job: JobConfig, options: RunOptions, logger: Logger, stop: StopSignal = StopSignal(),
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.job = job
        self.options = options
        self.logger = logger
        self.stop = stop
        self.environment = environment
    }

    /// `--dry-run`: scans and compares; creates, changes and deletes nothing
    /// beside the output and sends nothing to the model.
    public func dryRun() async throws -> PlanReport {
        try OutputPaths(output: job.output).refuseSameFile(asPrimary: job.primary)
        let scanner = try PrimaryLocation.open(job: job, logger: logger)
        let scratch = try ScratchComparison(attributes: job.attributes)
        defer { scratch.close() }
        let scans = try await ScanStage(job: job, scanner: scanner, logger: logger).run { try await scratch.stage(source: $0, rows: $1) }
        let plan = try PlanStage(job: job, options: options, logger: logger).dryRun(scratch: scratch, scans: scans)
        return PlanReport(job: job, plan: plan)
    }

    public func run() async throws -> RunSummary {
        do {
            return try await runStages()
        } catch let error as DatabaseError {
            // SQLite failed below us: disk full, I/O error, permissions.
            let what: String
            switch error.resultCode {
            case .SQLITE_FULL: what = "the disk is full (SQLite: \(error.message ?? "full"))"
            case .SQLITE_IOERR: what = "I/O error (SQLite: \(error.message ?? "ioerr"))"
            case .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_PERM: what = "cannot write (SQLite: \(error.message ?? "\(error.resultCode)"))"
            default: throw ReindexError.internal("SQLite: \(error) — rerun with --restart; if it happens again, report it")
            }
            let work = BuildLocation(job: job, workDirectory: options.workDirectory).workPath
            throw ReindexError.io(path: work, detail: "\(what) — the live file is untouched; free space or fix permissions, then rerun the same command to resume")
        }
    }

    private func runStages() async throws -> RunSummary {
        var clock = StageClock()
        let ready = try await Preflight(job: job, options: options, environment: environment, logger: logger).run()
        defer { ready.lock.release() }
        var options = self.options
        if ready.finishedInterruptedPublish { options.full = false }
        let location = ready.location
        let checkpoint = try Checkpoint.open(workPath: location.workPath, job: job, mode: options.full ? .full : .incremental,
                                             restart: options.restart, wal: location.storage.workWAL, logger: logger)
        var work = checkpoint.work
        defer { work.close() }

        let planner = PlanStage(job: job, options: options, logger: logger)
        let schedule = FullCheckSchedule(job: job)
        let base = planner.base(work: work, deep: { schedule.checksBaseWhole(live: $0, index: ready.index) })
        let scanner = ScanStage(job: job, scanner: ready.scanner, logger: logger)
        var scans = try await scanner.run(work: work, checkStop: checkStop,
                                          scopes: SourceScope.decide(job: job, plan: base, resumed: checkpoint.resumed, index: ready.index, schedule: schedule))
        clock.lap("scan")
        CrashPoint.reached("scan")
        try checkStop()

        var initialPlan = try planner.diff(base, work: work, scans: scans)
        // Rows read in part serve only a clone of the live file: anything else reads every row again.
        // A run with nothing to publish asks nothing: the base's check counts every item of the
        // live file (0.1-0.3 s at 1M) for a clone that is not made.
        var cloneProblem: String?? = nil
        let nothingToPublish = initialPlan.isNoChange(resumed: checkpoint.resumed, index: ready.index, keywords: job.keywords) && !scans.mustPublish
        if scans.isPartial && !nothingToPublish {
            let why = try CloneStage(job: job, location: location, logger: logger)
                .whyBuild(work: work, plan: initialPlan, resumed: checkpoint.resumed, index: ready.index)
            cloneProblem = .some(why)
            if let why {
                clock.lap("plan")
                scans = try await rescan(work: work, scanner: scanner, reason: why, checkStop: checkStop)
                clock.lap("scan")
                initialPlan = try planner.diff(initialPlan, work: work, scans: scans)
                cloneProblem = nil
            }
        }
        clock.lap("plan")

        let model = ModelSession(model: job.model, environment: environment, stop: stop, logger: logger)
        let modelFree = initialPlan.publishesWithoutEmbedding(resumed: checkpoint.resumed, index: ready.index, keywords: job.keywords)
        if modelFree { logger.info("nothing to embed: no model is called") }
        // The managed server (if any) runs for the rest of the run and is stopped however it ends.
        return try await ManagedServer.run(modelFree ? nil : job.model.server, logger: logger) {
            var (plan, probes) = modelFree ? (initialPlan, initialPlan.liveProbes)
                : try await planner.confirmModel(initialPlan, work: work, model: model, scans: scans)
            if plan.isFull && scans.isPartial {
                // The model changed (--on-model-change=full): every row is embedded again.
                scans = try await rescan(work: work, scanner: scanner, reason: plan.fullReason ?? "full rebuild", checkStop: checkStop)
                plan = try planner.diff(plan, work: work, scans: scans)
                cloneProblem = nil
            }
            var summary = RunSummary(output: job.output, plan: plan, scans: scans, checkpoint: checkpoint, counters: model.counters)
            // A due full check, or a watermark to record, publishes even without a change (`SourceScope`).
            if plan.isNoChange(resumed: checkpoint.resumed, index: ready.index, keywords: job.keywords) && !scans.mustPublish {
                // Keep the live file, publish nothing, send nothing more.
                work.close()
                Checkpoint.discard(location.workPath)
                summary.note = "no changes since the last run; the live file is current"
                summary.endpoints = model.pool.report()
                return summary.finished(clock: clock)
            }
            try checkStop()
            if scans.isPartial && cloneProblem == nil && nothingToPublish {
                throw ReindexError.internal("a run planned with nothing to publish reached the clone without checking its base — rerun; if it happens again, report it")
            }

            let start = try await CloneStage(job: job, location: location, logger: logger)
                .run(work: work, plan: plan, resumed: checkpoint.resumed, index: ready.index, known: cloneProblem)
            work = start.work
            clock.lap("clone")
            let reuse = try ReuseStage(model: job.model, logger: logger).run(work: work, plan: plan, resumed: checkpoint.resumed)
            clock.lap("reuse")
            CrashPoint.reached("delta")
            var embedded = Embedded(probes: probes)
            if modelFree, case let pending = try work.pendingCount().chunks, pending > 0 {
                throw ReindexError.internal("the plan found nothing to embed, yet \(pending) chunks are pending — rerun with --restart; if it happens again, report it")
            }
            if !modelFree {
                embedded = try await EmbedStage(model: job.model, session: model, stop: stop, progressMode: options.progress,
                                                grace: options.grace, logger: logger).run(work: work, probes: probes)
            }
            clock.lap("embed")
            let verifier = VerifyStage(prefixLength: job.model.prefix.unicodeScalars.count)
            let accounting = try verifier.account(work: work, liveRunID: plan.live?[.runID])
            clock.lap("verify")
            let indexer = IndexStage(plan: ready.index, attributes: plan.attributes, keywords: job.keywords,
                                     prefixLength: job.model.prefix.unicodeScalars.count, logger: logger)
            var compaction: CompactionSummary?
            let index: VecIndex.Built
            if work.isClone {
                (index, compaction) = try indexer.apply(work: work, live: plan.live, items: accounting.items, compactAbove: job.compactAbove)
            } else {
                index = try indexer.run(work: work)
            }
            clock.lap("index")
            try checkStop()
            CrashPoint.reached("verify")
            let fullCheck = !work.isClone || schedule.due(live: plan.live)
            try verifier.check(work: work, accounting: accounting, full: fullCheck, attributes: plan.attributes)
            clock.lap("verify")

            summary.record(reuse: reuse, accounting: accounting, counters: model.counters)
            summary.endpoints = model.pool.report()
            summary.note = index.note
            summary.build = start.build
            summary.buildReason = start.reason
            summary.fullCheck = fullCheck
            summary.compaction = compaction
            summary = summary.finished(clock: clock)
            var meta = VectorFileMeta(job: job, runID: checkpoint.runID, accounting: accounting, chunking: plan.chunking, probes: embedded.probes,
                                      index: index.meta, attributes: plan.attributes, throughput: Self.throughput(embedded, previous: plan.live))
            for (key, value) in schedule.meta(fullCheck: fullCheck, live: plan.live) { meta[key] = value }
            meta[.watermarks] = Watermark.encode(scans.watermarks)
            try PublishStage(location: location, logger: logger)
                .run(work: work, meta: meta, record: summary.record(startedAt: checkpoint.startedAt))
            clock.lap("publish")
            summary.published = true
            return summary.finished(clock: clock)
        }
    }

    /// Reads every row of every source again, after a scan that read some
    /// in part for a run that cannot use it (`SourceScope`).
    private func rescan(work: WorkFile, scanner: ScanStage, reason: String, checkStop: () throws -> Void) async throws -> ScanResult {
        logger.notice("reading every row again", metadata: ["reason": "\(reason)"])
        try work.clearScan()
        return try await scanner.run(work: work, checkStop: checkStop, scopes: [:])
    }

    /// Items per second of this run's embedding when it embedded enough to
    /// tell, else the live file's figure (dry-run estimates read it).
    static func throughput(_ embedded: Embedded, previous: VectorFileMeta?) -> String? {
        guard embedded.embedded >= 100, embedded.seconds > 0 else { return previous?[.throughputItemsPerSecond] }
        return String(format: "%.1f", Double(embedded.embedded) / embedded.seconds)
    }

    /// Throws the interruption once SIGINT/SIGTERM asked for a stop.
    private func checkStop() throws {
        if let signal = stop.signal {
            throw ReindexError.interrupted(signal: signal, resumeHint: "committed work is kept in \(BuildLocation(job: job, workDirectory: options.workDirectory).workPath); rerun the same command to resume")
        }
    }
}
