import Foundation
import Logging

/// clone: decides how the new file starts. An incremental run that publishes
/// starts from a kernel-side copy of the live file (`FileClone`: a reflink
/// where the filesystem has them, else `copy_file_range`) and then applies
/// only its delta; a full run, a resumed build, a `/1` upgrade, a change of
/// index or attributes, or a live file that fails its check builds from
/// nothing, as before, and the log and the summary say why. The live file
/// is only read; the clone is a new file. The staged scan is kept (it is a
/// file beside the work file), so the work file is reopened on the clone.
struct CloneStage {
    let job: JobConfig
    let location: BuildLocation
    let logger: Logger

    struct Outcome {
        /// The work file the later stages use: the clone, or the one given.
        var work: WorkFile
        /// `clone: reflink`, `clone: copy_file_range`, `clone: copy` or `build`.
        var build: String
        /// Why an incremental run built from nothing; nil otherwise.
        var reason: String?
    }

    static let build = "build"

    /// `known`: `whyBuild`'s answer when the run already asked (a scan read
    /// in part asks before the plan is final); nil to ask now.
    func run(work: WorkFile, plan: Plan, resumed: Bool, index: VecIndex.Plan, known: String?? = nil) async throws -> Outcome {
        if work.isClone {
            return Outcome(work: work, build: try work.workState()[.base] ?? FileClone.Method.copyFileRange.rawValue, reason: nil)
        }
        if let reason = try known ?? whyBuild(work: work, plan: plan, resumed: resumed, index: index) {
            if plan.mode == .incremental {
                logger.notice("building the new file from nothing", metadata: ["reason": "\(reason)"])
            } else {
                logger.info("building the new file from nothing", metadata: ["reason": "\(plan.fullReason ?? reason)"])
            }
            return Outcome(work: work, build: Self.build, reason: plan.mode == .incremental ? reason : nil)
        }
        // The fresh work file holds only this run's identity and the failures its scan found.
        let failures = try work.recordedFailures()
        var state = try work.workState()
        state[.vecDeadRows] = plan.live?[.vecDeadRows] ?? "0"
        state[.baseRunID] = plan.live?[.runID]
        work.close(keepScan: true)
        for f in [location.workPath] + OutputPaths.sidecarSuffixes.map({ location.workPath + $0 }) { FileOps.remove(f) }
        let started = ContinuousClock.now
        let method = try WorkFile.clone(live: job.output, to: location.workPath, state: state)
        let cloned = try WorkFile(path: location.workPath, dimensions: job.model.dimensions, wal: location.storage.workWAL,
                                  attributes: job.attributes, scanPath: OutputPaths.scanFile(location.workPath))
        try cloned.attachLiveForClone(path: job.output)
        if !failures.isEmpty { try await cloned.write(items: [], failures: failures) }
        logger.info("cloned the live file", metadata: ["how": "\(method.rawValue)", "seconds": "\(String(format: "%.2f", (ContinuousClock.now - started).seconds))",
                                                       "to": "\(location.workPath)"])
        return Outcome(work: cloned, build: method.rawValue, reason: nil)
    }

    /// Why no run can start from a clone of a file with this meta, or nil.
    static func metaReason(live: VectorFileMeta, index: VecIndex.Plan) -> String? {
        guard live[.format] == VectorFileFormat.version else { return "upgrading a \(live[.format] ?? "?") file" }
        guard VecIndex.liveMatches(live, plan: index) else { return "the index changes (\(live[.index] ?? "none") to \(index.wanted))" }
        // vec_items is patched, not rebuilt, on the clone path: only by the sqlite-vec that built it.
        if index.wanted == "vec0", let version = index.version, let built = live[.sqliteVecVersion], built != version {
            return "sqlite-vec changed (\(built) built vec_items, this is \(version))"
        }
        return nil
    }

    /// Why this run cannot start from a clone of the live file; nil when it can.
    func whyBuild(work: WorkFile, plan: Plan, resumed: Bool, index: VecIndex.Plan) throws -> String? {
        guard plan.mode == .incremental, let live = plan.live else { return "full run" }
        // A work file that holds no item yet (a run killed before it embedded anything) is as good as a fresh one.
        if resumed, try work.itemCount() > 0 { return "resuming a file that was being built from nothing" }
        if let reason = Self.metaReason(live: live, index: index) { return reason }
        guard AttributeColumn.decode(live[.attributes]) == plan.attributes else { return "the attributes' names, roles or types changed" }
        if let problem = try work.cloneBaseProblem() { return "the live file failed its check: \(problem)" }
        return nil
    }
}
