import Foundation
import Logging

/// What the embed stage did.
struct Embedded: Sendable {
    var embedded = 0
    var failures: [FailedItem] = []
    /// The drift probes' vectors, for the new file's meta.
    var probes: [Probe] = []
    var seconds = 0.0
}

/// embed: sends every pending row to the model and commits the vectors. A
/// producer pages pending rows out of the staging table, cuts batches by
/// count and by estimated tokens, and keeps at most `concurrency` batches in
/// flight in a task group (one finishes, one starts). Each batch is embedded,
/// then committed by the single writer in one transaction — a checkpoint.
/// Memory holds one page of rows plus the in-flight batches, whatever the
/// corpus size. A stop request lets in-flight batches finish (up to `grace`),
/// then ends the run with the committed work kept for resume.
struct EmbedStage {
    let model: ModelConfig
    let session: ModelSession
    let stop: StopSignal
    let progressMode: ProgressReporter.Mode
    let grace: Duration
    let logger: Logger

    /// `probes` are the drift probes already embedded by the plan (empty when
    /// there was no live file to compare with: they are embedded here).
    func run(work: WorkFile, probes: [Probe]) async throws -> Embedded {
        let started = ContinuousClock.now
        var tokenLimit = model.maxBatchTokens
        if let limits = try await session.client.limits() {
            if let n = limits.maxBatchSize { session.limit.shrink(to: n) }
            if let t = limits.maxBatchTokens { tokenLimit = min(tokenLimit, t) }
            logger.info("server limits", metadata: ["max_batch": "\(limits.maxBatchSize.map(String.init) ?? "-")", "max_batch_tokens": "\(limits.maxBatchTokens.map(String.init) ?? "-")"])
        }
        var result = Embedded()
        result.probes = probes.isEmpty ? try await Probe.embed(Probe.texts, model: model, embedder: session.embedder) : probes
        let pending = try work.pendingCount()
        let pool = session.pool
        var detail: (@Sendable () -> String)?
        if pool.isFleet { detail = { @Sendable in pool.progressDetail() } }
        let progress = ProgressReporter(mode: progressMode, logger: logger, detail: detail)
        progress.start(total: pending.chunks)
        logger.info("embedding", metadata: ["chunks": "\(pending.chunks)"])
        let loop: Loop
        do {
            loop = try await embedPending(work: work, tokenLimit: tokenLimit, progress: progress)
        } catch {
            progress.finish()
            throw error
        }
        progress.finish()
        if loop.stoppedEarly, let signal = stop.signal {
            let done = try work.itemCount()
            throw ReindexError.interrupted(signal: signal, resumeHint: "\(done) items are committed in \(work.path); rerun the same command to resume")
        }
        result.embedded = loop.embedded
        result.failures = loop.failures
        result.seconds = (ContinuousClock.now - started).seconds
        return result
    }

    private struct Loop {
        var embedded = 0
        var failures: [FailedItem] = []
        var stoppedEarly = false
    }

    private enum Child: Sendable {
        case done(embedded: Int, failures: [FailedItem])
        case graceExpired
    }

    private func embedPending(work store: WorkFile, tokenLimit: Int, progress: ProgressReporter) async throws -> Loop {
        var outcome = Loop()
        let limit = session.limit
        let concurrency = session.pool.totalConcurrency  // the sum over the endpoints
        try await withThrowingTaskGroup(of: Child.self) { group in
            var inFlight = 0
            var buffer: [PendingChunk] = []
            var position = 0
            var cursor: Int64 = 0
            var exhausted = false

            func nextBatch() async throws -> [PendingChunk]? {
                if position >= buffer.count {
                    guard !exhausted else { return nil }
                    let page = try await store.pendingChunks(after: cursor, limit: 2048, prefixLength: model.prefix.unicodeScalars.count)
                    if page.count < 2048 { exhausted = true }
                    guard let last = page.last else { return nil }
                    cursor = last.rowid
                    buffer = page.map(\.chunk)
                    position = 0
                }
                let maxCount = limit.current
                var batch: [PendingChunk] = []
                var tokens = 0
                while position < buffer.count, batch.count < maxCount {
                    let t = buffer[position].input.utf8.count / 4 + 1
                    if !batch.isEmpty && tokens + t > tokenLimit { break }
                    tokens += t
                    batch.append(buffer[position])
                    position += 1
                }
                return batch
            }

            func collect(_ child: Child) {
                if case .done(let n, let failures) = child {
                    outcome.embedded += n
                    outcome.failures += failures
                    progress.advance(n + failures.count)
                }
            }

            while !stop.isRequested, let batch = try await nextBatch() {
                if inFlight >= concurrency {
                    if let child = try await group.next() { collect(child) }
                    inFlight -= 1
                    if stop.isRequested { break }
                }
                let embedder = session.embedder
                group.addTask {
                    let result = try await embedder.embed(batch)
                    try await store.write(items: result.items, failures: result.failures)
                    CrashPoint.batchCommitted()
                    return .done(embedded: result.items.count, failures: result.failures)
                }
                inFlight += 1
            }

            if stop.isRequested {
                outcome.stoppedEarly = true
                if inFlight > 0 {
                    logger.notice("stopping: waiting for in-flight batches", metadata: ["batches": "\(inFlight)", "grace_s": "\(grace.components.seconds)"])
                    let grace = self.grace
                    group.addTask {
                        try await Task.sleep(for: grace)
                        return .graceExpired
                    }
                    while inFlight > 0 {
                        do {
                            guard let child = try await group.next() else { break }
                            if case .graceExpired = child { group.cancelAll(); continue }
                            collect(child)
                            inFlight -= 1
                        } catch {
                            // A batch cut short by the stop: not committed, resumed next run.
                            inFlight -= 1
                        }
                    }
                }
                group.cancelAll()
                while (try? await group.next()) != nil {}
                return
            }
            while let child = try await group.next() { collect(child) }
        }
        return outcome
    }
}
