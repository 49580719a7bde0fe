import Foundation

/// A dry run's plan.
public struct PlanReport: Sendable {
    public var output: String
    public var fullReason: String?
    public var sources: [SourcePlan]
    public var full: Bool
    public var batchSize: Int
    public var maxBatchTokens: Int
    public var throughput: Double?
    public var chunking: ChunkSettings
    /// What the run does to the keyword index: `none`, `kept`, `added`, `removed`, `rebuilt` (a new tokenizer) or `built`.
    public var keywords: String

    init(job: JobConfig, plan: Plan) {
        output = job.output
        fullReason = plan.fullReason
        sources = plan.sources
        full = plan.isFull
        batchSize = job.model.batchSize
        maxBatchTokens = job.model.maxBatchTokens
        throughput = plan.live?[.throughputItemsPerSecond].flatMap(Double.init)
        chunking = plan.chunking
        keywords = Self.keywordChange(full: plan.live == nil, live: KeywordSettings.decode(plan.live?[.keywords]), wanted: job.keywords)
    }

    /// `full`: the run builds from nothing, so there is no live index to keep.
    static func keywordChange(full: Bool, live: KeywordSettings?, wanted: KeywordSettings?) -> String {
        switch (live, wanted) {
        case (_, nil): return full || live == nil ? "none" : "removed"
        case (_, _?) where full: return "built"
        case (nil, _?): return "added"
        case (let old?, let new?): return old == new ? "kept" : "rebuilt"
        }
    }

    /// Rows a run would embed.
    func toEmbed(_ p: SourcePlan) -> Int { p.rowsToEmbed }
    /// Tokens of the chunks a run would send, at the chunking's characters per token.
    func tokens(_ p: SourcePlan) -> Int { Int((Double(p.charsToEmbed) / chunking.charsPerToken).rounded(.up)) }
    public var toEmbedTotal: Int { sources.reduce(0) { $0 + toEmbed($1) } }
    public var chunksToEmbedTotal: Int { sources.reduce(0) { $0 + $1.chunksToEmbed } }
    public var estimatedTokens: Int { sources.reduce(0) { $0 + tokens($1) } }
    public var estimatedRequests: Int {
        let n = chunksToEmbedTotal
        guard n > 0 else { return 0 }
        return max((n + batchSize - 1) / batchSize, (estimatedTokens + maxBatchTokens - 1) / maxBatchTokens)
    }
    /// From the last run's chunks per second.
    public var estimatedSeconds: Double? {
        guard let throughput, throughput > 0 else { return nil }
        return (Double(chunksToEmbedTotal) / throughput * 10).rounded() / 10
    }
    func total(_ key: KeyPath<SourcePlan, Int>) -> Int { sources.reduce(0) { $0 + $1[keyPath: key] } }

    /// One JSON object (`--dry-run --format json`).
    public func json() -> String { Report.encode(self) }

    public func text() -> String {
        var lines = ["reindex dry run for \(output) (nothing was changed, no model was called)"]
        lines.append("  plan: \(fullReason.map { "full rebuild (\($0))" } ?? "incremental")")
        for p in sources {
            lines.append("  \(p.name): scanned \(p.scanned), skipped \(p.skipped), unchanged \(p.unchanged), added \(p.added), changed \(p.changed), removed \(p.removed), attributes changed \(p.attributesChanged), to embed \(toEmbed(p)) rows in \(p.chunksToEmbed) chunks")
            for kind in ["added", "changed", "removed", "attributes_changed"] where !(p.samples[kind] ?? []).isEmpty {
                lines.append("    \(kind): \(p.samples[kind]!.joined(separator: ", "))")
            }
        }
        let eta = estimatedSeconds.map { String(format: "%.1f s", $0) } ?? "unknown (no previous run recorded a throughput)"
        lines.append("  estimate: \(toEmbedTotal) rows in \(chunksToEmbedTotal) chunks to embed, \(estimatedRequests) requests, \(estimatedTokens) tokens, \(eta)")
        lines.append("  chunks: \(chunking.summary)")
        if keywords != "none" { lines.append("  keyword index: \(keywords)\(["added", "removed", "rebuilt"].contains(keywords) ? " (no embedding needed)" : "")") }
        return lines.joined(separator: "\n")
    }

    public func markdown() -> String {
        var lines = ["### reindex dry run: `\(output)`", ""]
        lines.append("Plan: **\(fullReason.map { "full rebuild (\($0))" } ?? "incremental")**", )
        lines.append("")
        lines.append("| source | scanned | skipped | unchanged | added | changed | removed | attributes changed | to embed (rows) | chunks |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for p in sources {
            lines.append("| \(p.name) | \(p.scanned) | \(p.skipped) | \(p.unchanged) | \(p.added) | \(p.changed) | \(p.removed) | \(p.attributesChanged) | \(toEmbed(p)) | \(p.chunksToEmbed) |")
        }
        lines.append("| **total** | \(total(\.scanned)) | \(total(\.skipped)) | \(total(\.unchanged)) | \(total(\.added)) | \(total(\.changed)) | \(total(\.removed)) | \(total(\.attributesChanged)) | \(toEmbedTotal) | \(chunksToEmbedTotal) |")
        lines.append("")
        let eta = estimatedSeconds.map { String(format: "%.1f s", $0) } ?? "unknown"
        lines.append("Estimate: \(estimatedRequests) requests, \(estimatedTokens) tokens, \(eta).")
        if keywords != "none" { lines.append("Keyword index: \(keywords).") }
        for p in sources {
            for kind in ["added", "changed", "removed", "attributes_changed"] where !(p.samples[kind] ?? []).isEmpty {
                lines.append("")
                lines.append("Sample \(kind) ids in `\(p.name)`: " + p.samples[kind]!.map { "`\($0)`" }.joined(separator: ", "))
            }
        }
        return lines.joined(separator: "\n")
    }
}

extension PlanReport: Encodable {
    private enum Key: String, CodingKey {
        case mode, output, keywords, scanned, skipped, unchanged, added, changed, removed, sources
        case chunking, attributesChanged = "attributes_changed"
        case fullReason = "full_reason", toEmbed = "to_embed", estimatedRequests = "estimated_requests", chunksToEmbed = "chunks_to_embed"
        case estimatedTokens = "estimated_tokens", estimatedSeconds = "estimated_seconds"
    }

    /// `sources.<name>` of the dry run's JSON.
    private struct SourceJSON: Encodable {
        var plan: SourcePlan
        var toEmbed: Int
        var tokens: Int
        private enum Key: String, CodingKey {
            case scanned, skipped, unchanged, added, changed, removed, truncated, samples
            case attributesChanged = "attributes_changed"
            case toEmbed = "to_embed", estimatedTokens = "estimated_tokens", chunksToEmbed = "chunks_to_embed"
        }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: Key.self)
            try c.encode(plan.scanned, forKey: .scanned)
            try c.encode(plan.skipped, forKey: .skipped)
            try c.encode(plan.unchanged, forKey: .unchanged)
            try c.encode(plan.added, forKey: .added)
            try c.encode(plan.changed, forKey: .changed)
            try c.encode(plan.removed, forKey: .removed)
            try c.encode(plan.attributesChanged, forKey: .attributesChanged)
            try c.encode(toEmbed, forKey: .toEmbed)
            try c.encode(plan.truncated, forKey: .truncated)
            try c.encode(tokens, forKey: .estimatedTokens)
            try c.encode(plan.chunksToEmbed, forKey: .chunksToEmbed)
            try c.encode(plan.samples, forKey: .samples)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode("dry-run", forKey: .mode)
        try c.encode(output, forKey: .output)
        try c.encode(fullReason, forKey: .fullReason)  // null for an incremental plan
        try c.encode(total(\.scanned), forKey: .scanned)
        try c.encode(total(\.skipped), forKey: .skipped)
        try c.encode(total(\.unchanged), forKey: .unchanged)
        try c.encode(total(\.added), forKey: .added)
        try c.encode(total(\.changed), forKey: .changed)
        try c.encode(total(\.removed), forKey: .removed)
        try c.encode(total(\.attributesChanged), forKey: .attributesChanged)
        try c.encode(toEmbedTotal, forKey: .toEmbed)
        try c.encode(chunksToEmbedTotal, forKey: .chunksToEmbed)
        try c.encode(chunking.summary, forKey: .chunking)
        try c.encode(estimatedRequests, forKey: .estimatedRequests)
        try c.encode(estimatedTokens, forKey: .estimatedTokens)
        try c.encode(estimatedSeconds, forKey: .estimatedSeconds)  // null without a recorded throughput
        try c.encode(keywords, forKey: .keywords)
        try c.encode(Dictionary(uniqueKeysWithValues: sources.map { ($0.name, SourceJSON(plan: $0, toEmbed: toEmbed($0), tokens: tokens($0))) }), forKey: .sources)
    }
}
