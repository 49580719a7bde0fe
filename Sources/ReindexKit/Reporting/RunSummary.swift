import Foundation

/// What a run did: stdout's summary (text or one JSON object).
public struct RunSummary: Sendable {
    public var mode: RunMode
    public var output: String
    public var fullReason: String?
    public var resumed = false
    public var published = false
    public var note: String?
    public var sources: [SourceSummary] = []
    public var requests = 0
    public var retries = 0
    public var durationSeconds = 0.0
    public var failures: [FailedItem] = []
    public var stages: [String: Double] = [:]
    public var longestReadMs = 0.0
    public var runID = ""
    /// each model endpoint, in the order the job lists them.
    public var endpoints: [EndpointSummary] = []
    /// How the new file started: `clone: reflink`, `clone: copy_file_range`,
    /// `clone: copy` (a copy of the live file, then the delta) or `build`
    /// (from nothing); nil when nothing was published.
    public var build: String?
    /// Why an incremental run built from nothing (e.g. the live file failed its check).
    public var buildReason: String?
    /// Whether every vector of the new file was checked (always for a build;
    /// periodically on the clone path, otherwise only what changed).
    public var fullCheck: Bool?
    /// The compaction of `vec_items` this run made, if any.
    public var compaction: CompactionSummary?

    public init(mode: RunMode, output: String) {
        self.mode = mode
        self.output = output
    }

    public var exitCode: Int32 { failed > 0 ? ExitCodes.partial : ExitCodes.success }

    func total(_ key: KeyPath<SourceSummary, Int>) -> Int { sources.reduce(0) { $0 + $1[keyPath: key] } }
    public var scanned: Int { total(\.scanned) }
    public var skipped: Int { total(\.skipped) }
    public var embedded: Int { total(\.embedded) }
    public var reused: Int { total(\.reused) }
    public var removed: Int { total(\.removed) }
    public var failed: Int { total(\.failed) }
    public var rows: Int { total(\.rows) }
    /// Rows cut into chunks by this run (new, changed, re-chunked).
    public var chunkedRows = 0
    /// Chunks the server found too long and that were split in two.
    public var splitChunks = 0
    /// How rows were cut into chunks, for the summary.
    public var chunking: String?
    public var itemsPerSecond: Double { durationSeconds > 0 ? Double(embedded) / durationSeconds : 0 }

    /// One JSON object (`--format json`); the keys are documented in README.md ("The summary").
    public func json() -> String { Report.encode(self) }

    public func text() -> String {
        var lines: [String] = []
        let what = published ? "published \(output)" : "nothing published (\(note ?? "no changes"))"
        lines.append("reindex \(mode.rawValue): \(what)")
        if let fullReason { lines.append("  full rebuild: \(fullReason)") }
        if published, let note { lines.append("  note: \(note)") }
        if resumed { lines.append("  resumed: \(total(\.carriedOver)) items carried over from the interrupted run") }
        if let build {
            lines.append("  new file: \(build)\(buildReason.map { " (\($0))" } ?? ""); checked \(fullCheck == true ? "in full" : "what changed")")
        }
        if let compaction { lines.append("  \(compaction.text)") }
        for s in sources {
            lines.append("  \(s.name): \(s.scanText), skipped \(s.skipped), \(s.rows) rows; chunks embedded \(s.embedded), reused \(s.reused); rows removed \(s.removed), failed \(s.failed)\(s.attributesChanged > 0 ? ", attributes changed \(s.attributesChanged)" : "")")
        }
        for s in sources {
            if let n = s.missedByChangedColumn { lines.append("  \(s.name): full scan: \(n) rows changed without changed-column moving") }
        }
        lines.append(String(format: "  total: %d chunks embedded, %d reused; %d rows removed, %d failed; %d requests, %d retries; %.2f s, %.0f items/s",
                            embedded, reused, removed, failed, requests, retries, durationSeconds, itemsPerSecond))
        if endpoints.count > 1 { lines += endpoints.map(\.text) }
        if let chunking { lines.append("  chunks: \(chunking)\(splitChunks > 0 ? "; \(splitChunks) chunks the server found too long were split — the chunk size or window is wrong for this server" : "")") }
        for f in failures.prefix(20) {
            lines.append("  failed: \(f.source) \(f.sourceID): \(f.error)")
        }
        if failures.count > 20 { lines.append("  … \(failures.count - 20) more failures in the vector file's failures table") }
        return lines.joined(separator: "\n")
    }
}

extension RunSummary: Encodable {
    private enum Key: String, CodingKey {
        case mode, output, resumed, published, scanned, skipped, embedded, reused, removed, failed, unchanged, added, rows, chunking
        case chunksEmbedded = "chunks_embedded", chunksReused = "chunks_reused", chunkedRows = "chunked_rows", splitChunks = "split_chunks"
        case attributesChanged = "attributes_changed"
        case changed, truncated, requests, retries, sources, failures, note
        case fullReason = "full_reason", runID = "run_id", carriedOver = "carried_over", durationSeconds = "duration_s"
        case itemsPerSecond = "items_per_s", stages = "stages_s", longestReadMs = "longest_read_ms", exitCode = "exit_code"
        case endpoints
        case build, buildReason = "build_reason", fullCheck = "full_check", compaction
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(mode, forKey: .mode)
        try c.encode(output, forKey: .output)
        try c.encode(fullReason, forKey: .fullReason)  // null for an incremental run
        try c.encode(resumed, forKey: .resumed)
        try c.encode(published, forKey: .published)
        try c.encode(runID, forKey: .runID)
        try c.encode(scanned, forKey: .scanned)
        try c.encode(skipped, forKey: .skipped)
        try c.encode(embedded, forKey: .embedded)
        try c.encode(reused, forKey: .reused)
        try c.encode(embedded, forKey: .chunksEmbedded)
        try c.encode(reused, forKey: .chunksReused)
        try c.encode(rows, forKey: .rows)
        try c.encode(chunkedRows, forKey: .chunkedRows)
        try c.encode(splitChunks, forKey: .splitChunks)
        try c.encode(chunking, forKey: .chunking)
        try c.encode(removed, forKey: .removed)
        try c.encode(failed, forKey: .failed)
        try c.encode(total(\.unchanged), forKey: .unchanged)
        try c.encode(total(\.added), forKey: .added)
        try c.encode(total(\.changed), forKey: .changed)
        try c.encode(total(\.attributesChanged), forKey: .attributesChanged)
        try c.encode(total(\.truncated), forKey: .truncated)
        try c.encode(total(\.carriedOver), forKey: .carriedOver)
        try c.encode(requests, forKey: .requests)
        try c.encode(retries, forKey: .retries)
        try c.encode((durationSeconds * 1000).rounded() / 1000, forKey: .durationSeconds)
        try c.encode(itemsPerSecond.rounded(), forKey: .itemsPerSecond)
        try c.encode(Dictionary(uniqueKeysWithValues: sources.map { ($0.name, $0) }), forKey: .sources)
        try c.encode(Array(failures.prefix(100)), forKey: .failures)
        try c.encode(stages.mapValues { ($0 * 1000).rounded() / 1000 }, forKey: .stages)
        try c.encode((longestReadMs * 10).rounded() / 10, forKey: .longestReadMs)
        try c.encode(Int(exitCode), forKey: .exitCode)
        try c.encode(note, forKey: .note)  // null when there is none
        try c.encode(endpoints, forKey: .endpoints)
        try c.encode(build, forKey: .build)  // null when nothing was published
        try c.encode(buildReason, forKey: .buildReason)
        try c.encode(fullCheck, forKey: .fullCheck)
        try c.encode(compaction, forKey: .compaction)
    }
}
