import Crypto
import Foundation
import Logging

/// The resumable state of an unfinished run: the work file and the identity
/// of the job it belongs to. A work file is only resumed by the same job
/// (same sources, model, dimensions, provider, prefix, format); anything
/// else starts over, so foreign vectors can never leak into a file.
public struct Checkpoint {
    public var work: WorkFile
    public var resumed: Bool
    public var runID: String
    public var startedAt: Int64
    public var previousMode: RunMode?

    /// What makes a work file's vectors this job's: a work file is only resumed
    /// by a job with the same fingerprint (also `meta.source_fingerprint`).
    public static func fingerprint(_ job: JobConfig) -> String {
        var h = SHA256()
        func add(_ s: String) { h.update(data: Data(s.utf8)); h.update(data: Data([0])) }
        add(VectorFileFormat.version)
        for s in job.sources { add(s.name); add(s.query) }
        // Issue 14: the attributes shape the work file's tables; only when declared, so older fingerprints hold.
        if !job.attributes.isEmpty { add("attributes:" + AttributeSpec.describe(job.attributes)) }
        add(job.model.provider.rawValue)
        add(job.model.name)
        add(String(job.model.dimensions))
        add(job.model.prefix)
        add(String(job.model.maxInputChars))
        add(String(job.model.chunkTokens))
        add(String(job.model.chunkOverlap ?? -1))
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Removes a work file and SQLite's sidecars of it.
    public static func discard(_ workPath: String) {
        for f in OutputPaths.workFiles(workPath) { FileOps.remove(f) }
    }

    /// Opens the work file, resuming it when it belongs to this job.
    public static func open(workPath: String, job: JobConfig, mode: RunMode, restart: Bool, wal: Bool, logger: Logger) throws -> Checkpoint {
        let fingerprint = Self.fingerprint(job)
        // Staging is redone by every run; a clone never got its identity.
        FileOps.remove(OutputPaths.scanFile(workPath))
        FileOps.remove(OutputPaths.cloneFile(workPath))
        func create() throws -> WorkFile {
            try WorkFile(path: workPath, dimensions: job.model.dimensions, wal: wal, attributes: job.attributes, scanPath: OutputPaths.scanFile(workPath))
        }
        func startOver(_ work: WorkFile?, _ message: Logger.Message) throws -> WorkFile {
            logger.notice(message, metadata: ["work": "\(workPath)"])
            work?.close()
            discard(workPath)
            return try create()
        }
        if restart, FileOps.exists(workPath) {
            logger.notice("--restart: discarding the unfinished work", metadata: ["work": "\(workPath)"])
            discard(workPath)
        }
        var work: WorkFile
        var state: [WorkStateKey: String] = [:]
        if FileOps.exists(workPath) {
            do {
                work = try create()
                state = try work.workState()
            } catch {
                logger.warning("the unfinished work file is unreadable; starting over", metadata: ["work": "\(workPath)", "error": "\(error)"])
                discard(workPath)
                work = try create()
            }
            if !state.isEmpty && state[.fingerprint] != fingerprint {
                work = try startOver(work, "the unfinished work belongs to another job configuration (sources, model, dimensions, provider or prefix changed); starting over")
                state = [:]
            } else if mode == .full, state[.base] != nil {
                // A clone holds the old file's vectors, which a full run never trusts.
                work = try startOver(work, "the unfinished work started from a clone of the live file and this run is --full; starting over")
                state = [:]
            }
        } else {
            work = try create()
        }
        if state.isEmpty, var adopted = try adoptFinished(work, fingerprint: fingerprint, mode: mode, logger: logger) {
            if mode == .incremental {
                // A finished file is complete and checked: a clone base as good as the live file.
                work.close()
                adopted.work = try create()
            }
            return adopted
        }
        if state.isEmpty, try work.itemCount() > 0 {
            work = try startOver(work, "the unfinished work file cannot be matched to this job; starting over")
        }
        if let runID = state[.runID], let started = state[.startedAt].flatMap(Int64.init) {
            logger.notice("resuming the unfinished run", metadata: ["run_id": "\(runID)"])
            return Checkpoint(work: work, resumed: true, runID: runID, startedAt: started, previousMode: state[.mode].flatMap(RunMode.init))
        }
        let runID = UUID().uuidString.lowercased()
        let started = Int64(Date().timeIntervalSince1970)
        try work.setWorkState([.fingerprint: fingerprint, .runID: runID, .startedAt: String(started), .mode: mode.rawValue, .job: job.name])
        return Checkpoint(work: work, resumed: false, runID: runID, startedAt: started, previousMode: nil)
    }

    /// A run killed between finalizing and renaming leaves a complete file
    /// whose private tables are gone; its meta still names the job. Adopt it
    /// rather than pay for every vector again — unless a full run would
    /// inherit vectors an incremental run copied from an old file.
    static func adoptFinished(_ work: WorkFile, fingerprint: String, mode: RunMode, logger: Logger) throws -> Checkpoint? {
        let found = try work.finishedIdentity()
        guard found.items > 0, found.fingerprint == fingerprint, mode == .incremental || found.mode == RunMode.full.rawValue else { return nil }
        let runID = UUID().uuidString.lowercased()
        let started = Int64(Date().timeIntervalSince1970)
        var state: [WorkStateKey: String] = [.fingerprint: fingerprint, .runID: runID, .startedAt: String(started), .mode: mode.rawValue]
        if mode == .incremental {
            state[.base] = FileClone.adopted
            state[.vecDeadRows] = try work.metaValue(.vecDeadRows) ?? "0"
        }
        try work.setWorkState(state)
        logger.notice("resuming a finished but unpublished work file", metadata: ["work": "\(work.path)"])
        return Checkpoint(work: work, resumed: true, runID: runID, startedAt: started, previousMode: found.mode.flatMap(RunMode.init))
    }
}
