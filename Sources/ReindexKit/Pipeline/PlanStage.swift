import Foundation
import GRDB
import Logging

/// plan: compares the staged rows with the live file — unchanged, added,
/// changed, removed — and decides the run's mode. Anything wrong with the
/// live file (missing, unreadable, corrupt, another format or model) makes
/// the run a full rebuild with the reason reported, never a failure. The
/// drift check belongs here too: it can turn an incremental plan into a full
/// one, or stop the run.
struct PlanStage {
    let job: JobConfig
    let options: RunOptions
    let logger: Logger

    /// Ids shown per kind of change in a dry run.
    static let sampleSize = 10

    private var sourceNames: [String] { job.sources.map(\.name) }

    /// A run's base: the live file attached to the work file's connection
    /// when it is usable (it stays attached for the scan's unseen ids and the
    /// reuse stage), and the mode. `deep` says, from the live file's meta,
    /// whether it is checked whole (`LiveFile.compatibility`).
    func base(work: WorkFile, deep: (VectorFileMeta) -> Bool) -> Plan {
        var plan = Plan(mode: .full, fullReason: options.full ? "requested" : nil, live: nil, sources: [], chunking: ChunkSettings(model: job.model))
        guard !options.full else { return plan }
        let status = work.attachLive(path: job.output, model: job.model, deep: deep)
        plan.live = status.meta
        if let chunking = ChunkSettings.decode(status.meta?[.chunking]) { plan.chunking = chunking }
        if let reason = status.reason {
            plan.fullReason = reason
            logger.notice("full rebuild", metadata: ["reason": "\(reason)"])
        } else {
            plan.mode = .incremental
        }
        return plan
    }

    /// A run's plan: the base compared with the staged scan. A damaged page
    /// of the live file that the lighter check did not read makes the run a
    /// full rebuild here.
    func diff(_ base: Plan, work: WorkFile, scans: ScanResult) throws -> Plan {
        var plan = base
        do {
            if plan.live != nil { plan.liveFailures = try work.liveFailureCount() }
            plan.sources = try work.diff(sources: sourceNames, liveAttached: plan.live != nil, sample: Self.sampleSize)
                .map { SourcePlan(diff: $0, scan: scans.counts[$0.name], sample: Self.sampleSize) }
        } catch let error as DatabaseError where plan.live != nil && [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(error.resultCode.primaryResultCode) {
            // Nothing is reused from a damaged file.
            let reason = "failed quick_check: \(error.message ?? "\(error.resultCode)")"
            logger.notice("full rebuild", metadata: ["reason": "\(reason)"])
            work.detachLive()
            plan = Plan(mode: .full, fullReason: reason, live: nil, sources: [], chunking: ChunkSettings(model: job.model))
            plan.sources = try work.diff(sources: sourceNames, liveAttached: false, sample: Self.sampleSize)
                .map { SourcePlan(diff: $0, scan: scans.counts[$0.name], sample: Self.sampleSize) }
        }
        plan.attributes = try work.attributeColumns(base: scans.isPartial ? AttributeColumn.decode(plan.live?[.attributes]) : nil)
        let missed = try work.missedByChangedColumn(sources: plan.live == nil ? [] : scans.flagged)
        for i in plan.sources.indices {
            let name = plan.sources[i].name
            if case .since(let mark) = scans.partial[name] { plan.sources[i].readSince = mark }
            plan.sources[i].missedByChangedColumn = missed[name]
            if let n = missed[name], n > 0, let column = job.sources.first(where: { $0.name == name })?.changedColumn {
                logger.warning("the full scan found rows that changed without changed-column moving; they are embedded now, but a run that reads only changed rows misses such writes — check that every write sets the column",
                               metadata: ["source": "\(name)", "rows": "\(n)", "changed_column": "\(column)"])
            }
        }
        return plan
    }

    /// A dry run's plan, on a scratch connection: nothing is created beside
    /// the output, and a file with stale sidecars is not opened at all.
    func dryRun(scratch: ScratchComparison, scans: ScanResult) throws -> Plan {
        var plan = Plan(mode: .full, fullReason: options.full ? "requested" : nil, live: nil, sources: [], chunking: ChunkSettings(model: job.model))
        if !OutputPaths.sidecars(of: job.output).isEmpty {
            // Opening the file beside stale sidecars could apply or create them: a real run refuses (exit 73).
            plan.fullReason = plan.fullReason ?? "stale sidecar files beside the output (a real run refuses them; see --force)"
        } else if !options.full {
            let status = scratch.attachLive(path: job.output, model: job.model)
            plan.live = status.meta
            if let chunking = ChunkSettings.decode(status.meta?[.chunking]) { plan.chunking = chunking }
            if let reason = status.reason { plan.fullReason = reason } else { plan.mode = .incremental }
        }
        plan.sources = try scratch.diff(sources: sourceNames, liveAttached: plan.live != nil, sample: Self.sampleSize)
            .map { SourcePlan(diff: $0, scan: scans.counts[$0.name], sample: Self.sampleSize) }
        plan.attributes = try scratch.attributeColumns()
        // The estimate from the chunking itself: the rows a run would embed, cut as it would cut them.
        let work = try scratch.toEmbed(liveFormat: plan.live?[.format], chunking: plan.chunking, prefix: job.model.prefix)
        for i in plan.sources.indices {
            let w = work[plan.sources[i].name] ?? (0, 0, 0)
            plan.sources[i].rowsToEmbed = w.rows
            plan.sources[i].chunksToEmbed = w.chunks
            plan.sources[i].charsToEmbed = w.chars
        }
        return plan
    }

    /// How this run chunks: exactly as the `/2` file it builds on did; else
    /// from the server's window and tokenizer (`TokenBudget`), or the
    /// conservative estimate when the server cannot tell.
    private func measureChunking(_ plan: Plan, _ session: ModelSession) async throws -> Plan {
        if plan.live?[.format] == VectorFileFormat.version, ChunkSettings.decode(plan.live?[.chunking]) != nil { return plan }
        var attempt = 0
        var budget: TokenBudget
        while true {
            do {
                budget = try await TokenBudget.measure(client: session.client, chunkTokens: job.model.chunkTokens,
                                                       overlapTokens: ChunkSettings.overlapTokens(job.model), prefix: job.model.prefix)
                break
            } catch let error as TransportError {
                // The same patience as an embedding request: the server may be starting or briefly away.
                guard attempt < job.model.maxRetries else {
                    throw ReindexError.modelUnavailable(url: Endpoint(model: job.model, apiKey: nil).display,
                                                        detail: "asking for its window and tokenizer failed after \(attempt + 1) attempts (got \(error.message)) — check that the server is running and reachable, then rerun")
                }
                attempt += 1
                try await Task.sleep(for: .milliseconds(Int(BatchEmbedder.backoff(attempt: attempt, retryAfter: nil) * 1000)))
            }
        }
        var measured = plan
        measured.chunking = ChunkSettings(model: job.model, budget: budget)
        logger.info("chunking", metadata: ["how": "\(measured.chunking.summary)"])
        return measured
    }

    /// Before any row is sent: the model must still be the one that built the
    /// live file. Embeds the probe texts (returned for the new file's meta)
    /// and compares them with the stored ones; on drift, stops (exit 65) or,
    /// with `--on-model-change=full`, turns the plan into a full rebuild.
    ///
    /// With several endpoints every endpoint answers the probes
    /// before it gets rows (`EndpointPool.admit`): one that disagrees with the
    /// reference is refused for the run; drift is when all of them disagree
    /// with the live file.
    func confirmModel(_ plan: Plan, work: WorkFile, model session: ModelSession, scans: ScanResult) async throws -> (Plan, [Probe]) {
        let fleet = session.pool.isFleet
        guard let live = plan.live else {
            var probes: [Probe] = []
            if fleet, case .agreed(let p) = try await session.pool.admit(stored: []) { probes = p }
            return (try await measureChunking(plan, session), probes)
        }
        var probes: [Probe]
        let drift: String?
        if fleet {
            switch try await session.pool.admit(stored: Probe.decode(live[.probes] ?? "")) {
            case .agreed(let p): (probes, drift) = (p, nil)
            case .drift(let d): (probes, drift) = ([], d)
            }
        } else {
            probes = try await Probe.embed(Probe.texts, model: job.model, embedder: session.embedder)
            drift = Probe.drift(stored: Probe.decode(live[.probes] ?? ""), fresh: probes)
        }
        guard let drift else {
            return (try await measureChunking(plan, session), probes)
        }
        switch options.onModelChange {
        case .stop:
            throw ReindexError.modelDrift(detail: "\(drift) — mixing old and new vectors would break retrieval; rerun with --on-model-change=full to rebuild everything with the new model, or point \(fleet ? "model.endpoints" : "model.url") back at the old one")
        case .full:
            if fleet { probes = session.pool.rebase() }
            logger.warning("model changed; rebuilding everything (--on-model-change=full)", metadata: ["detail": "\(drift)"])
            work.detachLive()
            var full = plan
            full.mode = .full
            full.fullReason = "model changed: \(drift)"
            full.live = nil
            full.liveFailures = 0
            full.sources = try work.diff(sources: sourceNames, liveAttached: false, sample: Self.sampleSize)
                .map { SourcePlan(diff: $0, scan: scans.counts[$0.name], sample: Self.sampleSize) }
            return (try await measureChunking(full, session), probes)
        }
    }
}
