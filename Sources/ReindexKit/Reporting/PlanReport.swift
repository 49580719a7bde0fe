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

    init(job: JobConfig, plan: Plan) {
        output = job.output
        fullReason = plan.fullReason
        sources = plan.sources
        full = plan.isFull
        batchSize = job.model.batchSize
        maxBatchTokens = job.model.maxBatchTokens
        throughput = plan.live?[.throughputItemsPerSecond].flatMap(Double.init)
    }

    func toEmbed(_ p: SourcePlan) -> Int { full ? p.eligible : p.added + p.changed }
    func chars(_ p: SourcePlan) -> Int { p.charsToEmbed }
    public var toEmbedTotal: Int { sources.reduce(0) { $0 + toEmbed($1) } }
    public var estimatedTokens: Int { sources.reduce(0) { $0 + chars($1) } / 4 }
    public var estimatedRequests: Int {
        let n = toEmbedTotal
        guard n > 0 else { return 0 }
        return max((n + batchSize - 1) / batchSize, (estimatedTokens + maxBatchTokens - 1) / maxBatchTokens)
    }
    public var estimatedSeconds: Double? {
        guard let throughput, throughput > 0 else { return nil }
        return (Double(toEmbedTotal) / throughput * 10).rounded() / 10
    }
    func total(_ key: KeyPath<SourcePlan, Int>) -> Int { sources.reduce(0) { $0 + $1[keyPath: key] } }

    public func json() -> String {
        var sourcesJSON: [String: Any] = [:]
        for p in sources {
            sourcesJSON[p.name] = [
                "scanned": p.scanned, "skipped": p.skipped, "unchanged": p.unchanged, "added": p.added,
                "changed": p.changed, "removed": p.removed, "to_embed": toEmbed(p), "truncated": p.truncated,
                "estimated_tokens": chars(p) / 4, "samples": p.samples,
            ] as [String: Any]
        }
        let object: [String: Any] = [
            "mode": "dry-run", "output": output, "full_reason": fullReason ?? NSNull(),
            "scanned": total(\.scanned), "skipped": total(\.skipped), "unchanged": total(\.unchanged),
            "added": total(\.added), "changed": total(\.changed), "removed": total(\.removed),
            "to_embed": toEmbedTotal, "estimated_requests": estimatedRequests, "estimated_tokens": estimatedTokens,
            "estimated_seconds": estimatedSeconds ?? NSNull(), "sources": sourcesJSON,
        ]
        return Report.encode(object)
    }

    public func text() -> String {
        var lines = ["reindex dry run for \(output) (nothing was changed, no model was called)"]
        lines.append("  plan: \(fullReason.map { "full rebuild (\($0))" } ?? "incremental")")
        for p in sources {
            lines.append("  \(p.name): scanned \(p.scanned), skipped \(p.skipped), unchanged \(p.unchanged), added \(p.added), changed \(p.changed), removed \(p.removed), to embed \(toEmbed(p))")
            for kind in ["added", "changed", "removed"] where !(p.samples[kind] ?? []).isEmpty {
                lines.append("    \(kind): \(p.samples[kind]!.joined(separator: ", "))")
            }
        }
        let eta = estimatedSeconds.map { String(format: "%.1f s", $0) } ?? "unknown (no previous run recorded a throughput)"
        lines.append("  estimate: \(toEmbedTotal) to embed, \(estimatedRequests) requests, \(estimatedTokens) tokens, \(eta)")
        return lines.joined(separator: "\n")
    }

    public func markdown() -> String {
        var lines = ["### reindex dry run: `\(output)`", ""]
        lines.append("Plan: **\(fullReason.map { "full rebuild (\($0))" } ?? "incremental")**", )
        lines.append("")
        lines.append("| source | scanned | skipped | unchanged | added | changed | removed | to embed |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for p in sources {
            lines.append("| \(p.name) | \(p.scanned) | \(p.skipped) | \(p.unchanged) | \(p.added) | \(p.changed) | \(p.removed) | \(toEmbed(p)) |")
        }
        lines.append("| **total** | \(total(\.scanned)) | \(total(\.skipped)) | \(total(\.unchanged)) | \(total(\.added)) | \(total(\.changed)) | \(total(\.removed)) | \(toEmbedTotal) |")
        lines.append("")
        let eta = estimatedSeconds.map { String(format: "%.1f s", $0) } ?? "unknown"
        lines.append("Estimate: \(estimatedRequests) requests, \(estimatedTokens) tokens, \(eta).")
        for p in sources {
            for kind in ["added", "changed", "removed"] where !(p.samples[kind] ?? []).isEmpty {
                lines.append("")
                lines.append("Sample \(kind) ids in `\(p.name)`: " + p.samples[kind]!.map { "`\($0)`" }.joined(separator: ", "))
            }
        }
        return lines.joined(separator: "\n")
    }
}
