import Foundation

/// Counts of one source in a run summary.
public struct SourceSummary: Sendable, Equatable {
    public var name: String
    public var scanned = 0
    public var skipped = 0
    public var unchanged = 0
    public var added = 0
    public var changed = 0
    public var removed = 0
    public var embedded = 0
    public var reused = 0
    public var failed = 0
    public var truncated = 0
    public var carriedOver = 0

    var json: [String: Any] {
        ["scanned": scanned, "skipped": skipped, "unchanged": unchanged, "added": added, "changed": changed,
         "removed": removed, "embedded": embedded, "reused": reused, "failed": failed, "truncated": truncated,
         "carried_over": carriedOver]
    }
}

/// What a run did: stdout's summary (text or one JSON object).
public struct RunSummary: Sendable {
    public var mode: String
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

    public var exitCode: Int32 { failed > 0 ? ExitCodes.partial : ExitCodes.success }

    func total(_ key: KeyPath<SourceSummary, Int>) -> Int { sources.reduce(0) { $0 + $1[keyPath: key] } }
    public var scanned: Int { total(\.scanned) }
    public var skipped: Int { total(\.skipped) }
    public var embedded: Int { total(\.embedded) }
    public var reused: Int { total(\.reused) }
    public var removed: Int { total(\.removed) }
    public var failed: Int { total(\.failed) }
    public var itemsPerSecond: Double { durationSeconds > 0 ? Double(embedded) / durationSeconds : 0 }

    public func json() -> String {
        var sourcesJSON: [String: Any] = [:]
        for s in sources { sourcesJSON[s.name] = s.json }
        let object: [String: Any] = [
            "mode": mode, "output": output, "full_reason": fullReason ?? NSNull(), "resumed": resumed,
            "published": published, "run_id": runID,
            "scanned": scanned, "skipped": skipped, "embedded": embedded, "reused": reused, "removed": removed,
            "failed": failed, "unchanged": total(\.unchanged), "added": total(\.added), "changed": total(\.changed),
            "truncated": total(\.truncated), "carried_over": total(\.carriedOver),
            "requests": requests, "retries": retries,
            "duration_s": (durationSeconds * 1000).rounded() / 1000,
            "items_per_s": itemsPerSecond.rounded(),
            "sources": sourcesJSON,
            "failures": failures.prefix(100).map { ["source": $0.source, "id": $0.sourceID, "error": $0.error] },
            "stages_s": stages.mapValues { ($0 * 1000).rounded() / 1000 },
            "longest_read_ms": (longestReadMs * 10).rounded() / 10,
            "exit_code": Int(exitCode),
            "note": note ?? NSNull(),
        ]
        return Report.encode(object)
    }

    public func text() -> String {
        var lines: [String] = []
        let what = published ? "published \(output)" : "nothing published (\(note ?? "no changes"))"
        lines.append("reindex \(mode): \(what)")
        if let fullReason { lines.append("  full rebuild: \(fullReason)") }
        if published, let note { lines.append("  note: \(note)") }
        if resumed { lines.append("  resumed: \(total(\.carriedOver)) items carried over from the interrupted run") }
        for s in sources {
            lines.append("  \(s.name): scanned \(s.scanned), skipped \(s.skipped), embedded \(s.embedded), reused \(s.reused), removed \(s.removed), failed \(s.failed)")
        }
        lines.append(String(format: "  total: %d embedded, %d reused, %d removed, %d failed; %d requests, %d retries; %.2f s, %.0f items/s",
                            embedded, reused, removed, failed, requests, retries, durationSeconds, itemsPerSecond))
        for f in failures.prefix(20) {
            lines.append("  failed: \(f.source) \(f.sourceID): \(f.error)")
        }
        if failures.count > 20 { lines.append("  … \(failures.count - 20) more failures in the vector file's failures table") }
        return lines.joined(separator: "\n")
    }
}

/// A dry run's plan.
public struct PlanReport: Sendable {
    public var output: String
    public var fullReason: String?
    public var sources: [SourcePlan]
    public var full: Bool
    public var batchSize: Int
    public var maxBatchTokens: Int
    public var throughput: Double?

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

enum Report {
    static func encode(_ object: [String: Any]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
