import Foundation

/// The plan stage's answer: how the run builds its file and what it will
/// change. Everything that decides the run's shape is here — the mode and
/// why, the live file's meta, the per-source diff — so the stages after it
/// only read it.
public struct Plan: Sendable {
    public var mode: RunMode
    /// Why the run rebuilds everything; nil for an incremental run.
    public var fullReason: String?
    /// The live file's meta when it is the base of an incremental run.
    public var live: VectorFileMeta?
    public var sources: [SourcePlan]
    /// Rows the live file records as failed (a run retries them).
    public var liveFailures = 0
    /// How rows are cut into chunks: the live file's when the run builds on
    /// it, else from the job's settings and what the server says.
    public var chunking: ChunkSettings
    /// The job's attributes with their types, from the scan.
    public var attributes: [AttributeColumn] = []

    public var isFull: Bool { mode == .full }
    public var hasChanges: Bool { sources.contains(where: \.hasChanges) }

    /// A run with nothing to do keeps the live file and publishes nothing:
    /// no change in any source, no failure to retry, nothing resumed, the
    /// live file is of the current format (a `/1` file is upgraded), its
    /// index is the one this run would build, and it stores the same
    /// attributes (names, roles, types). An attribute-only change is a change.
    /// A run that publishes but embeds nothing — incremental on a
    /// current-format file, no row added or changed, no failure to retry,
    /// nothing resumed — copies every vector from the live file, so it calls
    /// no model (and starts no managed server): the vectors cannot mix
    /// models, and the next run that embeds checks for drift. Attribute-only
    /// changes, removals and turning the keyword index on or off are such
    /// runs. A no-change run still sends the drift probes: it publishes
    /// nothing, and its answer, "the live file is current", includes the model.
    func publishesWithoutEmbedding(resumed: Bool, index: VecIndex.Plan, keywords: KeywordSettings?) -> Bool {
        !isFull && !resumed && live?[.format] == VectorFileFormat.version && liveFailures == 0
            && !liveProbes.isEmpty && sources.allSatisfy { $0.added == 0 && $0.changed == 0 }
            && !isNoChange(resumed: resumed, index: index, keywords: keywords)
    }

    /// The drift probes the live file recorded (kept by a run that embeds nothing).
    var liveProbes: [Probe] { Probe.decode(live?[.probes] ?? "") }

    func isNoChange(resumed: Bool, index: VecIndex.Plan, keywords: KeywordSettings?) -> Bool {
        !isFull && !resumed && live?[.format] == VectorFileFormat.version && VecIndex.liveMatches(live, plan: index)
            && KeywordSettings.decode(live?[.keywords]) == keywords
            && !hasChanges && liveFailures == 0 && AttributeColumn.decode(live?[.attributes]) == attributes
    }
}
