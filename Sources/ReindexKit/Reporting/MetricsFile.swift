import Foundation

/// Prometheus text-format metrics for node_exporter's textfile collector
/// (`--metrics-file`), written atomically (temp file + rename) so the
/// collector never reads half a file. The last success timestamp survives
/// failed runs: it is carried over from the previous file.
public enum MetricsFile {
    public static func write(path: String, job: String, summary: RunSummary?, exitCode: Int32, duration: Double, now: Date = Date()) throws {
        let label = "job=\"\(job.replacingOccurrences(of: "\"", with: "'"))\""
        var lastSuccess = previousValue(path: path, metric: "reindex_last_success_timestamp_seconds")
        if exitCode == 0 || exitCode == ExitCodes.partial { lastSuccess = now.timeIntervalSince1970 }
        var lines: [String] = []
        func metric(_ name: String, _ help: String, _ type: String, _ samples: [(String, Double)]) {
            lines.append("# HELP \(name) \(help)")
            lines.append("# TYPE \(name) \(type)")
            for (labels, value) in samples {
                lines.append("\(name){\(labels)} \(value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value))")
            }
        }
        metric("reindex_last_run_timestamp_seconds", "When the last run ended.", "gauge", [(label, now.timeIntervalSince1970.rounded())])
        metric("reindex_last_success_timestamp_seconds", "When the last run that published (or found nothing to do) ended.", "gauge", [(label, (lastSuccess ?? 0).rounded())])
        metric("reindex_last_run_duration_seconds", "Wall time of the last run.", "gauge", [(label, (duration * 1000).rounded() / 1000)])
        metric("reindex_last_run_exit_code", "Exit code of the last run (see README, Exit codes).", "gauge", [(label, Double(exitCode))])
        if let s = summary {
            let kinds: [(String, Int)] = [("scanned", s.scanned), ("skipped", s.skipped), ("embedded", s.embedded), ("reused", s.reused),
                                          ("removed", s.removed), ("failed", s.failed)]
            metric("reindex_last_run_items", "Items of the last run by kind (embedded and reused count chunks, the others rows).", "gauge", kinds.map { ("\(label),kind=\"\($0.0)\"", Double($0.1)) })
            metric("reindex_rows", "Source rows in the vector file the last run published.", "gauge", [(label, Double(s.rows))])
            metric("reindex_last_run_chunks", "Chunks of the last run by kind.", "gauge", [
                ("\(label),kind=\"embedded\"", Double(s.embedded)), ("\(label),kind=\"reused\"", Double(s.reused)),
                ("\(label),kind=\"split\"", Double(s.splitChunks)),
            ])
            metric("reindex_last_run_requests", "Model requests of the last run.", "gauge", [(label, Double(s.requests))])
            metric("reindex_failed_items", "Rows the model rejected, listed in the vector file's failures table.", "gauge", [(label, Double(s.failed))])
            metric("reindex_last_run_published", "1 when the last run published a new file.", "gauge", [(label, s.published ? 1 : 0)])
            if s.published {
                // The clone path (issue 15): an incremental run that keeps building from nothing costs the whole file.
                metric("reindex_last_run_cloned", "1 when the last published file started as a copy of the live one, 0 when it was built from nothing.",
                       "gauge", [(label, s.build?.hasPrefix("clone") == true ? 1 : 0)])
                metric("reindex_last_run_compaction_seconds", "Seconds the last run spent rebuilding vec_items to reclaim dead slots (0 without a compaction).",
                       "gauge", [(label, ((s.compaction?.seconds ?? 0) * 1000).rounded() / 1000)])
            }
            endpointMetrics(s.endpoints, label: label, metric)
        }
        let text = lines.joined(separator: "\n") + "\n"
        let tmp = path + ".tmp.\(getpid())"
        do {
            try FileOps.makeDirectory(forFile: path)
            try writeNew(tmp, Data(text.utf8), like: path)
            try FileOps.rename(tmp, path)
        } catch let error as ReindexError {
            throw error
        } catch {
            throw ReindexError.io(path: path, detail: "cannot write the metrics file (got \(error.localizedDescription)) — check --metrics-file's directory and permissions")
        }
    }

    /// Writes `tmp`: created 0600, then given the mode and group of the
    /// metrics file it replaces (so a chmod or chgrp made for the collector
    /// survives the rename); a first file is 0644 less the umask: it
    /// holds counts and timestamps, no row data, and node_exporter usually
    /// reads it as another user (docs/security.md).
    static func writeNew(_ tmp: String, _ data: Data, like path: String) throws {
        unlink(tmp)
        var st = stat()
        let replacing = stat(path, &st) == 0
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, replacing ? 0o600 : 0o644)
        guard fd >= 0 else { throw FileOps.fail(tmp, "cannot create the metrics file") }
        var ok = false
        defer { close(fd); if !ok { unlink(tmp) } }
        if replacing {
            try FilePermissions(mode: st.st_mode & 0o666, group: st.st_gid, explicit: false).apply(fd: fd, path: tmp)
        }
        try data.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let w = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                guard w > 0 else { throw FileOps.fail(tmp, "write failed") }
                done += w
            }
        }
        ok = true
    }

    /// per model endpoint, labelled with its URL (no credentials).
    static func endpointMetrics(_ endpoints: [EndpointSummary], label: String,
                                _ metric: (String, String, String, [(String, Double)]) -> Void) {
        guard !endpoints.isEmpty else { return }
        func each(_ value: (EndpointSummary) -> Double?) -> [(String, Double)] {
            endpoints.compactMap { e in
                value(e).map { ("\(label),endpoint=\"\(e.url.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\"", $0) }
            }
        }
        metric("reindex_endpoint_requests", "Model requests of the last run per endpoint (batches and drift probes).", "gauge", each { Double($0.requests) })
        metric("reindex_endpoint_inputs", "Inputs sent in the last run per endpoint.", "gauge", each { Double($0.inputs) })
        metric("reindex_endpoint_failures", "Requests of the last run per endpoint without a usable answer (connection errors, timeouts, 5xx, 429).", "gauge", each { Double($0.failures) })
        metric("reindex_endpoint_latency_mean_seconds", "Mean latency of the endpoint's answers in the last run.", "gauge", each { $0.meanMs.map { $0 / 1000 } })
        metric("reindex_endpoint_latency_p95_seconds", "95th percentile latency of the endpoint's answers in the last run.", "gauge", each { $0.p95Ms.map { $0 / 1000 } })
        metric("reindex_endpoint_up", "1 when the endpoint was in rotation at the end of the last run; 0 when out, refused or unused.", "gauge", each { $0.state == "healthy" ? 1 : 0 })
    }

    static func previousValue(path: String, metric: String) -> Double? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(metric + "{") {
            if let v = line.split(separator: " ").last.flatMap({ Double($0) }), v > 0 { return v }
        }
        return nil
    }
}
