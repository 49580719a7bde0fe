import Foundation
import GRDB
import Logging

/// The pipeline of DESIGN.md: scan → plan → reuse → embed → index → verify →
/// publish. Owns the order of the stages and the invariants between them;
/// each stage lives in its own type.
public final class Reindexer {
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

    /// Where and how the new file is built (decided from statfs at the start of a run).
    public lazy var storage: StorageDecision = {
        let workDir = options.workDirectory ?? Self.defaultWorkDirectory
        return FileSystemProbe.decide(output: FileSystemProbe.probe(job.output), work: FileSystemProbe.probe(workDir),
                                      primary: FileSystemProbe.probe(job.primary), forcedWorkDir: options.workDirectory != nil)
    }()

    static var defaultWorkDirectory: String {
        ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    }

    /// The work file: beside the output, or in the local work directory when
    /// the output is on a network filesystem (named after the output's path,
    /// so each output has its own and a rerun finds it again).
    public var workPath: String {
        guard storage.buildLocally else { return job.output + ".work" }
        let dir = options.workDirectory ?? Self.defaultWorkDirectory
        let tag = SourceScanner.hash(job.output).prefix(6).map { String(format: "%02x", $0) }.joined()
        return (dir as NSString).appendingPathComponent("reindex-\((job.output as NSString).lastPathComponent)-\(tag).work")
    }

    /// The file renamed over the output: always beside it.
    var publishPath: String { job.output + ".work" }

    /// Refuses an output that is the primary (same path, same inode, a link to it).
    public static func checkPaths(_ job: JobConfig) throws {
        let out = URL(fileURLWithPath: job.output).resolvingSymlinksInPath().path
        let primary = URL(fileURLWithPath: job.primary).resolvingSymlinksInPath().path
        var same = out == primary
        if let a = FileOps.identity(job.output), let b = FileOps.identity(job.primary), a == b { same = true }
        for suffix in [".work", ".prev", ".lock"] {
            if let a = FileOps.identity(job.output + suffix), let b = FileOps.identity(job.primary), a == b { same = true }
        }
        if same {
            throw ReindexError.usage("output \(job.output) is the primary database \(job.primary) (same file or a link to it); the vector file must be a separate, dedicated file — set `output` to another path")
        }
    }

    /// Moves stale sidecars aside with --force, else refuses (exit 73).
    func handleStaleSidecars() throws {
        let stale = FileOps.sidecars(of: job.output)
        guard !stale.isEmpty else { return }
        guard options.force else { throw ReindexError.staleSidecars(paths: stale) }
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        let dir = job.output + ".stale-" + stamp
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw ReindexError.io(path: dir, detail: "cannot create: \(error.localizedDescription)")
        }
        for path in stale {
            try FileOps.rename(path, dir + "/" + (path as NSString).lastPathComponent)
        }
        logger.warning("--force: moved stale sidecar files aside", metadata: ["to": "\(dir)", "files": "\(stale.count)"])
    }

    func makeClient() -> any EmbeddingClient {
        let key = job.model.apiKey(environment: environment)
        switch job.model.provider {
        case .openai: return OpenAIEmbeddingClient(model: job.model, apiKey: key)
        case .ollama: return OllamaEmbeddingClient(model: job.model, apiKey: key)
        case .tei: return TEIEmbeddingClient(model: job.model, apiKey: key)
        }
    }

    // MARK: - Dry run

    /// Scans and compares; creates, changes and deletes nothing beside the
    /// output and sends nothing to the model.
    public func plan() async throws -> PlanReport {
        try Self.checkPaths(job)
        let scanner = try SourceScanner(path: job.primary, logger: logger)
        for source in job.sources { try scanner.validate(source) }
        // A private in-memory main database; the staging table is an anonymous temp file.
        let queue = try DatabaseQueue()
        try await queue.writeWithoutTransaction { db in try VectorStore.attachScan(db) }
        var scans: [String: ScanCounts] = [:]
        for source in job.sources {
            scans[source.name] = try await scanner.scan(source, model: job.model) { rows in
                try await VectorStore.stage(queue, source: source.name, rows: rows)
            }
        }
        var fullReason: String? = options.full ? "requested" : nil
        var throughput: Double?
        var live = false
        if FileOps.sidecars(of: job.output).isEmpty {
            let status = options.full ? .unusable(reason: "requested") : Planner.attachLive(queue, path: job.output, model: job.model)
            if let meta = status.meta {
                live = true
                throughput = meta["throughput_items_per_s"].flatMap(Double.init)
            } else if fullReason == nil {
                fullReason = status.reason
            }
        } else if fullReason == nil {
            // Opening the file beside stale sidecars would create files: a real run refuses (exit 73).
            fullReason = "stale sidecar files beside the output (a real run refuses them; see --force)"
        }
        let plans = try Planner.diff(queue, sources: job.sources.map(\.name), scans: scans, liveAttached: live)
        try queue.close()
        return PlanReport(output: job.output, fullReason: fullReason, sources: plans, full: fullReason != nil,
                          batchSize: job.model.batchSize, maxBatchTokens: job.model.maxBatchTokens, throughput: throughput)
    }

    // MARK: - Run

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
            default: throw ReindexError.internal("SQLite: \(error)")
            }
            throw ReindexError.io(path: workPath, detail: "\(what) — the live file is untouched; free space or fix permissions, then rerun the same command to resume")
        }
    }

    func runStages() async throws -> RunSummary {
        let began = ContinuousClock.now
        var stages: [String: Double] = [:]
        var mark = ContinuousClock.now
        func lap(_ name: String) {
            let now = ContinuousClock.now
            stages[name, default: 0] += (now - mark).seconds
            mark = now
        }

        try Self.checkPaths(job)
        let scanner = try SourceScanner(path: job.primary, logger: logger)
        for source in job.sources { try scanner.validate(source) }
        let vec = try await VecIndex.resolve(mode: job.index, explicitPath: options.sqliteVecPath, environment: environment, logger: logger)
        try FileOps.makeDirectory(forFile: job.output)
        let lock = try RunLock(output: job.output)
        defer { lock.release() }
        try handleStaleSidecars()
        if try Publisher.finishInterruptedPublish(output: job.output, work: publishPath, logger: logger) {
            var summary = RunSummary(mode: options.full ? "full" : "incremental", output: job.output)
            summary.published = true
            summary.resumed = true
            summary.note = "the interrupted run had already published this file; nothing left to do"
            summary.durationSeconds = (ContinuousClock.now - began).seconds
            return summary
        }

        logger.info("storage", metadata: [
            "output_fs": "\(FileSystemProbe.probe(job.output)?.description ?? "?")",
            "primary_fs": "\(FileSystemProbe.probe(job.primary)?.description ?? "?")",
            "build": "\(storage.buildLocally ? "local work directory, then copy" : "beside the output")",
            "work_journal": "\(storage.workWAL ? "wal" : "delete")",
        ])
        for note in storage.notes { logger.notice("\(note)") }
        // Leftovers of a crash that can no longer be resumed.
        FileOps.remove(job.output + ".work-prev")
        if storage.buildLocally { Checkpoint.discard(publishPath) }

        let requestedMode = options.full ? "full" : "incremental"
        let checkpoint = try Checkpoint.open(workPath: workPath, job: job, mode: requestedMode, restart: options.restart, wal: storage.workWAL, logger: logger)
        let store = checkpoint.store
        var closed = false
        defer { if !closed { try? store.queue.close() } }

        // scan
        var scans: [String: ScanCounts] = [:]
        for source in job.sources {
            scans[source.name] = try await scanner.scan(source, model: job.model) { rows in
                try self.checkStop()
                try await store.stage(source: source.name, rows: rows)
            }
            logger.info("scanned", metadata: ["source": "\(source.name)", "rows": "\(scans[source.name]!.scanned)"])
        }
        lap("scan")
        CrashPoint.reached("scan")
        try checkStop()

        // plan
        var fullReason: String? = options.full ? "requested" : nil
        var liveMeta: [String: String]?
        if !options.full {
            let status = Planner.attachLive(store.queue, path: job.output, model: job.model)
            liveMeta = status.meta
            if let reason = status.reason {
                fullReason = reason
                logger.notice("full rebuild", metadata: ["reason": "\(reason)"])
            }
        }
        var plans = try Planner.diff(store.queue, sources: job.sources.map(\.name), scans: scans, liveAttached: liveMeta != nil)
        lap("plan")

        let counters = RunCounters()
        let limit = BatchLimit(job.model.batchSize)
        let client = makeClient()
        let embedder = BatchEmbedder(client: client, model: job.model, counters: counters, stop: stop, logger: logger, limit: limit)
        // The server runs for the rest of the run and is stopped however it ends (not re-indented: a 3-line change).
        return try await ManagedServer.run(job.model.server, logger: logger) {

        // drift: before any other request, the model must still be the one that built the live file
        var probes: [Probe] = []
        if let meta = liveMeta {
            let stored = Probe.decode(meta["probes"] ?? "")
            probes = try await Probe.embed(Probe.texts, model: job.model, embedder: embedder)
            if let drift = Probe.drift(stored: stored, fresh: probes) {
                switch options.onModelChange {
                case .stop:
                    throw ReindexError.modelDrift(detail: drift)
                case .full:
                    logger.warning("model changed; rebuilding everything (--on-model-change=full)", metadata: ["detail": "\(drift)"])
                    fullReason = "model changed: \(drift)"
                    Planner.detachLive(store.queue)
                    liveMeta = nil
                    plans = try Planner.diff(store.queue, sources: job.sources.map(\.name), scans: scans, liveAttached: false)
                }
            }
        }
        let isFull = fullReason != nil
        let mode = isFull ? "full" : "incremental"

        // Nothing changed: keep the live file, publish nothing, send nothing more
        // (unless the live file's vec_items is not the one this run would build).
        if !isFull, !checkpoint.resumed, liveMeta != nil, VecIndex.liveMatches(liveMeta, plan: vec),
           plans.allSatisfy({ $0.added == 0 && $0.changed == 0 && $0.removed == 0 }),
           try Self.liveFailures(store.queue) == 0 {
            try store.queue.close()
            closed = true
            Checkpoint.discard(workPath)
            var summary = RunSummary(mode: mode, output: job.output)
            summary.note = "no changes since the last run; the live file is current"
            summary.sources = plans.map { p in
                var s = SourceSummary(name: p.name)
                s.scanned = p.scanned; s.skipped = p.skipped; s.unchanged = p.unchanged; s.truncated = p.truncated
                return s
            }
            summary.requests = counters["requests"]
            summary.durationSeconds = (ContinuousClock.now - began).seconds
            summary.longestReadMs = scanner.stats.longestReadTransaction.seconds * 1000
            summary.stages = stages
            summary.runID = checkpoint.runID
            return summary
        }

        try checkStop()
        // resume + reuse
        let carried = try store.reconcile(dropCopied: isFull)
        let carriedBySource = try Self.countBySource(store.queue, sql: "SELECT source, count(*) FROM items GROUP BY source")
        var reused = 0
        if !isFull {
            reused = try store.reuseFromLive()
        }
        try store.setWorkState(["mode": mode])
        lap("reuse")
        let reusedBySource = try Self.countBySource(store.queue, sql: "SELECT m.source, count(*) FROM items m JOIN work_copied c ON c.id = m.id GROUP BY m.source")

        // embed
        var tokenLimit = job.model.maxBatchTokens
        if let limits = try await client.limits() {
            if let n = limits.maxBatchSize { limit.shrink(to: n) }
            if let t = limits.maxBatchTokens { tokenLimit = min(tokenLimit, t) }
            logger.info("server limits", metadata: ["max_batch": "\(limits.maxBatchSize.map(String.init) ?? "-")", "max_batch_tokens": "\(limits.maxBatchTokens.map(String.init) ?? "-")"])
        }
        if probes.isEmpty {
            probes = try await Probe.embed(Probe.texts, model: job.model, embedder: embedder)
        }
        let pending = try store.pendingCount()
        let progress = ProgressReporter(mode: options.progress, logger: logger)
        progress.start(total: pending.rows)
        logger.info("embedding", metadata: ["rows": "\(pending.rows)", "carried_over": "\(carried)", "reused": "\(reused)"])
        let pipeline = EmbeddingPipeline(store: store, embedder: embedder, model: job.model, limit: limit, tokenLimit: tokenLimit,
                                         stop: stop, progress: progress, grace: options.grace, logger: logger)
        let outcome: EmbeddingPipeline.Outcome
        do {
            outcome = try await pipeline.run()
        } catch {
            progress.finish()
            throw error
        }
        progress.finish()
        lap("embed")
        if outcome.stoppedEarly, let signal = stop.signal {
            let done = try await store.queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM items") ?? 0 }
            throw ReindexError.interrupted(signal: signal, resumeHint: "\(done) items are committed in \(workPath); rerun the same command to resume")
        }

        // index
        let index = try VecIndex.build(store: store, plan: vec, logger: logger)
        lap("index")

        try checkStop()
        CrashPoint.reached("verify")
        // verify
        let (expected, unaccounted) = try await store.queue.write { db -> (Int, Int) in
            try db.execute(sql: """
                DELETE FROM failures WHERE NOT EXISTS (SELECT 1 FROM scan.rows r WHERE r.source = failures.source AND r.source_id = failures.source_id)
                   OR EXISTS (SELECT 1 FROM items i WHERE i.source = failures.source AND i.source_id = failures.source_id)
                """)
            let staged = try Int.fetchOne(db, sql: "SELECT count(*) FROM scan.rows") ?? 0
            let failed = try Int.fetchOne(db, sql: "SELECT count(*) FROM failures") ?? 0
            let missing = try Int.fetchOne(db, sql: """
                SELECT count(*) FROM scan.rows r WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.source = r.source AND i.source_id = r.source_id)
                  AND NOT EXISTS (SELECT 1 FROM failures f WHERE f.source = r.source AND f.source_id = r.source_id)
                """) ?? 0
            return (staged - failed, missing)
        }
        guard unaccounted == 0 else {
            throw ReindexError.verification(detail: "\(unaccounted) scanned rows are neither embedded nor recorded as failed")
        }
        try Publisher.verify(store, expectedItems: expected)
        lap("verify")

        // summary, meta, publish
        var summary = RunSummary(mode: mode, output: job.output)
        summary.fullReason = fullReason
        summary.resumed = checkpoint.resumed
        summary.runID = checkpoint.runID
        summary.requests = counters["requests"]
        summary.retries = counters["retries"]
        summary.note = index.note
        let failedRows = try await store.queue.read { db in
            try Row.fetchAll(db, sql: "SELECT source, source_id, error FROM failures ORDER BY source, source_id").map {
                FailedItem(source: $0[0], sourceID: $0[1], error: $0[2])
            }
        }
        summary.failures = failedRows
        let itemsBySource = try Self.countBySource(store.queue, sql: "SELECT source, count(*) FROM items GROUP BY source")
        let failedBySource = Dictionary(grouping: failedRows, by: \.source).mapValues(\.count)
        summary.sources = plans.map { p in
            var s = SourceSummary(name: p.name)
            s.scanned = p.scanned; s.skipped = p.skipped
            s.truncated = p.truncated + counters["truncated:\(p.name)"]
            s.unchanged = isFull ? 0 : p.unchanged
            s.added = isFull ? p.eligible : p.added
            s.changed = isFull ? 0 : p.changed
            s.removed = p.removed
            s.reused = reusedBySource[p.name] ?? 0
            s.carriedOver = min(carriedBySource[p.name] ?? 0, (itemsBySource[p.name] ?? 0) - s.reused)
            s.embedded = (itemsBySource[p.name] ?? 0) - s.reused - s.carriedOver
            s.failed = failedBySource[p.name] ?? 0
            return s
        }
        summary.durationSeconds = (ContinuousClock.now - began).seconds
        summary.longestReadMs = scanner.stats.longestReadTransaction.seconds * 1000
        var meta: [String: String] = [
            "format": VectorStore.format,
            "model": job.model.name,
            "provider": job.model.provider.rawValue,
            "dimensions": String(job.model.dimensions),
            "distance": "cosine",
            "normalized": "l2",
            "embedding_encoding": "float32-le",
            "created_at": ISO8601DateFormatter().string(from: Date()),
            "run_id": checkpoint.runID,
            "item_count": String(expected),
            "job": job.name,
            "source_fingerprint": Checkpoint.fingerprint(job),
            "sources": Report.encode(["names": job.sources.map(\.name)]),
            "prefix": job.model.prefix,
            "probes": Probe.encode(probes),
            "generator": "reindex",
        ]
        meta.merge(index.meta) { _, new in new }
        let embedSeconds = stages["embed"] ?? 0
        if outcome.embedded >= 100, embedSeconds > 0 {
            meta["throughput_items_per_s"] = String(format: "%.1f", Double(outcome.embedded) / embedSeconds)
        } else if let previous = liveMeta?["throughput_items_per_s"] {
            meta["throughput_items_per_s"] = previous
        }
        summary.stages = stages
        try Publisher.finalize(store, meta: meta, run: summary, startedAt: checkpoint.startedAt)
        closed = true
        CrashPoint.reached("finalize")
        if storage.buildLocally {
            logger.info("copying the new file beside the output", metadata: ["from": "\(workPath)", "to": "\(publishPath)"])
            try FileOps.copyFile(from: workPath, to: publishPath)
        }
        try Publisher.publish(work: publishPath, output: job.output, runID: checkpoint.runID, logger: logger)
        Checkpoint.discard(workPath)
        lap("publish")
        summary.published = true
        summary.stages = stages
        summary.durationSeconds = (ContinuousClock.now - began).seconds
        return summary
        }
    }

    /// Throws the interruption once SIGINT/SIGTERM asked for a stop.
    func checkStop() throws {
        if let signal = stop.signal {
            throw ReindexError.interrupted(signal: signal, resumeHint: "committed work is kept in \(workPath); rerun the same command to resume")
        }
    }

    static func countBySource(_ queue: DatabaseQueue, sql: String) throws -> [String: Int] {
        try queue.read { db in
            var out: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: sql) { out[row[0]] = row[1] }
            return out
        }
    }

    static func liveFailures(_ queue: DatabaseQueue) throws -> Int {
        try queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM live.failures") ?? 0 }
    }
}
