import Foundation
import GRDB
import Testing

/// Issue: incremental runs for cron, and dry-run diff reports.
@Suite(.serialized) struct IncrementalTests {
    /// A primary of 1,300 messages and 75 knowledge entries, published once
    /// (counters reset), unless `publish` is false.
    func harness(_ name: String = #function, publish: Bool = true) throws -> Harness {
        try Harness(name, publish: publish ? Harness.Publish() : nil)
    }

    func input(_ primary: URL, _ id: String) throws -> String? {
        let q = try DatabaseQueue(path: primary.path, configuration: { var c = Configuration(); c.readonly = true; return c }())
        defer { try? q.close() }
        return try q.read { db in try String.fetchOne(db, sql: #"SELECT content FROM "Message" WHERE id = ? AND "deletedAt" IS NULL"#, arguments: [id]) }
    }

    @Test func embedsExactlyNewAndChangedRowsAndMatchesAFullRebuild() throws {
        let h = try harness()
        defer { h.cleanup() }
        let changes = try h.mutate(["--insert", "7", "--update", "5", "--delete", "3", "--soft-delete", "2"])
        let r = try h.runJob(["--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try E2E.json(r.stdout)
        #expect(summary["mode"] as? String == "incremental")
        #expect(summary["full_reason"] is NSNull)
        #expect(summary["added"] as? Int == 7)
        #expect(summary["changed"] as? Int == 5)
        #expect(summary["removed"] as? Int == 5)
        #expect(summary["embedded"] as? Int == 12)
        #expect((summary["reused"] as? Int ?? 0) == (summary["unchanged"] as? Int ?? -1))

        // The server saw exactly the new and changed rows (plus the drift probes).
        let texts = try h.server.stats(texts: true)["texts"] as! [String]
        var expected: [String] = []
        for id in changes["inserted"]! + changes["updated"]! { expected.append(try #require(try input(h.primary, id))) }
        #expect(texts.count == expected.count + Probe.count)
        #expect(Set(texts).isSuperset(of: expected))

        // Same content as a full rebuild of the same primary.
        let reference = try h.writeJob("reference.yml", output: "reference/vectors.db")
        #expect(try h.runJob(["--full"], job: reference).status == 0)
        let a = try E2E.items(h.output), b = try E2E.items(h.dir.appendingPathComponent("reference/vectors.db"))
        #expect(a.count == b.count)
        for (k, v) in b { #expect(a[k]?.hash == v.hash && a[k]?.vector == v.vector, "\(k)") }
        #expect(FileManager.default.fileExists(atPath: h.prev.path))
    }

    @Test func anUnchangedPrimarySendsOnlyTheProbes() throws {
        let h = try harness()
        defer { h.cleanup() }
        let before = try E2E.sha256(h.output)
        let r = try h.runJob(["--format", "json"])
        #expect(r.status == 0)
        let stats = try h.server.stats()
        #expect(stats["inputs"] as? Int == Probe.count)
        #expect(stats["requests"] as? Int == 1)
        #expect(try E2E.json(r.stdout)["published"] as? Bool == false)
        #expect(try E2E.sha256(h.output) == before)
        #expect(try h.outListing() == ["vectors.db", "vectors.db.lock"])
    }

    @Test(arguments: ["missing", "garbage", "corrupt", "foreign", "model", "dimensions"])
    func automaticFullRebuild(reason: String) throws {
        let h = try harness("auto\(reason)", publish: reason != "missing")
        defer { h.cleanup() }
        switch reason {
        case "garbage":
            try Data(repeating: 0x5A, count: 50_000).write(to: h.output)
        case "corrupt":
            var data = try Data(contentsOf: h.output)
            let page = 4096
            for i in stride(from: page * 3, to: min(data.count, page * 40), by: 97) { data[i] = 0xFF }
            try data.write(to: h.output)
        case "foreign":
            try FileManager.default.removeItem(at: h.output)
            let q = try DatabaseQueue(path: h.output.path)
            try q.write { db in try db.execute(sql: "CREATE TABLE notes(x); INSERT INTO notes VALUES (1)") }
            try q.close()
        case "model":
            let q = try DatabaseQueue(path: h.output.path)
            try q.write { db in try db.execute(sql: "UPDATE meta SET value = 'old-model' WHERE key = 'model'") }
            try q.close()
        case "dimensions":
            let q = try DatabaseQueue(path: h.output.path)
            try q.write { db in try db.execute(sql: "UPDATE meta SET value = '768' WHERE key = 'dimensions'") }
            try q.close()
        default: break
        }
        let r = try h.runJob(["--format", "json"])
        #expect(r.status == 0, "\(reason): \(r.stderr)")
        let summary = try E2E.json(r.stdout)
        let why = summary["full_reason"] as? String ?? ""
        #expect(summary["mode"] as? String == "full")
        let words = ["missing": "missing", "garbage": "not a database", "corrupt": "quick_check", "foreign": "not a reindex-vectors/2 file",
                     "model": "old-model", "dimensions": "768"]
        let matches = why.contains(words[reason]!) || (reason == "corrupt" && why.contains("malformed"))
        #expect(matches, "\(reason): full_reason \(why)")
        #expect(summary["reused"] as? Int == 0)
        #expect(try E2E.items(h.output).count == summary["embedded"] as? Int)
    }

    @Test func driftStopsBeforeAnyOtherRequestUnlessToldToRebuild() throws {
        let h = try harness()
        defer { h.cleanup() }
        _ = try h.mutate(["--insert", "3"])
        let before = try E2E.sha256(h.output)
        try h.server.faults(["seed": 4242])
        let r = try h.runJob()
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains("model changed") && r.stderr.contains("--on-model-change=full"))
        #expect(try h.server.stats()["inputs"] as? Int == Probe.count, "only the probes were sent")
        #expect(try E2E.sha256(h.output) == before)

        let rebuilt = try h.runJob(["--on-model-change=full", "--format", "json"])
        #expect(rebuilt.status == 0, "\(rebuilt.stderr)")
        let summary = try E2E.json(rebuilt.stdout)
        #expect((summary["full_reason"] as? String ?? "").contains("model changed"))
        #expect(summary["reused"] as? Int == 0)
    }

    @Test func dryRunReportsThePlanAndTouchesNothing() throws {
        let h = try harness()
        defer { h.cleanup() }
        let changes = try h.mutate(["--insert", "4", "--update", "3", "--delete", "2"])
        let snapshot = try FileManager.default.subpathsOfDirectory(atPath: h.dir.path).sorted()
        let hashes = try snapshot.filter { !$0.hasSuffix("out") }.map { try E2E.sha256(h.dir.appendingPathComponent($0)) }
        let r = try h.runJob(["--dry-run", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let plan = try E2E.json(r.stdout)
        #expect(plan["mode"] as? String == "dry-run")
        #expect(plan["added"] as? Int == 4 && plan["changed"] as? Int == 3 && plan["removed"] as? Int == 2)
        #expect(plan["to_embed"] as? Int == 7)
        #expect(plan["full_reason"] is NSNull)
        for key in ["scanned", "skipped", "unchanged", "estimated_requests", "estimated_tokens", "estimated_seconds", "sources"] {
            #expect(plan[key] != nil, "missing key \(key)")
        }
        #expect(plan["estimated_seconds"] is NSNumber, "the last real run recorded a throughput")
        let message = (plan["sources"] as! [String: Any])["message"] as! [String: Any]
        let samples = message["samples"] as! [String: [String]]
        #expect(Set(samples["added"]!) == Set(changes["inserted"]!))
        #expect(Set(samples["changed"]!) == Set(changes["updated"]!))
        #expect(Set(samples["removed"]!) == Set(changes["deleted"]!))
        // Nothing created, changed or deleted; no model request.
        #expect(try FileManager.default.subpathsOfDirectory(atPath: h.dir.path).sorted() == snapshot)
        #expect(try snapshot.filter { !$0.hasSuffix("out") }.map { try E2E.sha256(h.dir.appendingPathComponent($0)) } == hashes)
        #expect(try h.server.stats()["requests"] as? Int == 0)

        let md = try h.runJob(["--dry-run", "--format", "markdown"])
        #expect(md.stdout.contains("| message | "))
        #expect(md.stdout.contains("| **total** |"))

        // Against no vector file at all: a full plan with its reason, still nothing created.
        try FileManager.default.removeItem(at: h.dir.appendingPathComponent("out"))
        let fresh = try E2E.json(try h.runJob(["--dry-run", "--format", "json"]).stdout)
        #expect(fresh["full_reason"] as? String == "missing")
        #expect(fresh["estimated_seconds"] is NSNull)
        #expect(!FileManager.default.fileExists(atPath: h.dir.appendingPathComponent("out").path))
    }

    @Test func aSecondRunExits75AndAStaleLockDoesNotBlock() throws {
        let h = try harness()
        defer { h.cleanup() }
        // A stale lock from a dead run: content but no holder.
        try "pid 999999, started 2020-01-01T00:00:00Z\n".write(toFile: h.lock.path, atomically: true, encoding: .utf8)
        _ = try h.mutate(["--insert", "200"])
        try h.server.faults(["delay_ms": 300])
        let first = try h.spawnJob()
        try E2E.wait("the first run to reach the model", timeout: 120) { (try h.server.stats()["requests"] as? Int ?? 0) >= 1 }
        let second = try h.runJob()
        #expect(second.status == 75, "\(second.stderr)")
        #expect(second.stderr.contains("pid \(first.processIdentifier)"))
        try h.server.faults([:])
        try E2E.wait("the first run", timeout: 120) { !first.isRunning }
        #expect(first.terminationStatus == 0, "\(E2E.readSpawned(first))")
    }

    @Test func metricsFileIsValidPrometheusText() throws {
        let h = try harness()
        defer { h.cleanup() }
        let metrics = h.dir.appendingPathComponent("metrics/reindex.prom")
        _ = try h.mutate(["--insert", "2"])
        #expect(try h.runJob(["--metrics-file", metrics.path]).status == 0)
        let text = try String(contentsOf: metrics, encoding: .utf8)
        var values: [String: Double] = [:]
        let sample = try Regex(#"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.eE+-]+)$"#)
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") { continue }
            let m = try #require(try sample.wholeMatch(in: String(line)), "not a sample line: \(line)")
            values[String(line.split(separator: " ").first!)] = Double(m.output[3].substring!)
        }
        #expect(values[#"reindex_last_run_exit_code{job="e2e"}"#] == 0)
        #expect(values[#"reindex_last_run_items{job="e2e",kind="embedded"}"#] == 2)
        #expect(values[#"reindex_last_run_cloned{job="e2e"}"#] == 1, "an incremental run that publishes starts from a clone")
        #expect(values[#"reindex_last_run_compaction_seconds{job="e2e"}"#] == 0)
        let success = try #require(values[#"reindex_last_success_timestamp_seconds{job="e2e"}"#])
        #expect(abs(success - Date().timeIntervalSince1970) < 600)
        // A failed run keeps the last success time and records its exit code.
        try h.server.faults(["status_sequence": Array(repeating: 503, count: 30)])
        _ = try h.mutate(["--insert", "2", "--seed", "9"])
        #expect(try h.runJob(["--metrics-file", metrics.path]).status == 69)
        let after = try String(contentsOf: metrics, encoding: .utf8)
        #expect(after.contains(#"reindex_last_run_exit_code{job="e2e"} 69"#))
        #expect(after.contains(#"reindex_last_success_timestamp_seconds{job="e2e"} \#(Int64(success))"#))
        // Written through a temp file (`.tmp.<pid>` of the run) renamed into place: none is left.
        #expect(try E2E.listing(metrics.deletingLastPathComponent()) == ["reindex.prom"])
    }
}
