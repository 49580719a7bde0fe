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
    public var itemsPerSecond: Double { durationSeconds > 0 ? Double(embedded) / durationSeconds : 0 }

    public func json() -> String {
        var sourcesJSON: [String: Any] = [:]
        for s in sources { sourcesJSON[s.name] = s.json }
        let object: [String: Any] = [
            "mode": mode.rawValue, "output": output, "full_reason": fullReason ?? NSNull(), "resumed": resumed,
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
        lines.append("reindex \(mode.rawValue): \(what)")
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
