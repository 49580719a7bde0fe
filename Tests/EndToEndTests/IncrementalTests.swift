import Foundation
import GRDB
import Testing

/// Issue: incremental runs for cron, and dry-run diff reports.
@Suite(.serialized) struct IncrementalTests {
    struct Setup {
        let dir: URL
        let server: EmbedServer
        let job: URL
        let primary: URL
        let output: URL
    }

    func setUp(_ name: String = #function, publish: Bool = true) throws -> Setup {
        let dir = try E2E.tempDir(name)
        let server = try EmbedServer()
        let primary = dir.appendingPathComponent("primary.db")
        try E2E.makePrimary(primary)
        let job = try E2E.writeJob(dir, url: server.url)
        if publish {
            let r = try E2E.reindex(["--job", job.path])
            guard r.status == 0 else { throw E2E.Failure("first run failed: \(r.stderr)") }
        }
        try server.reset()
        return Setup(dir: dir, server: server, job: job, primary: primary, output: dir.appendingPathComponent("out/vectors.db"))
    }

    func input(_ primary: URL, _ id: String) throws -> String? {
        let q = try DatabaseQueue(path: primary.path, configuration: { var c = Configuration(); c.readonly = true; return c }())
        defer { try? q.close() }
        return try q.read { db in try String.fetchOne(db, sql: #"SELECT content FROM "Message" WHERE id = ? AND "deletedAt" IS NULL"#, arguments: [id]) }
    }

    @Test func embedsExactlyNewAndChangedRowsAndMatchesAFullRebuild() throws {
        let s = try setUp()
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        let changes = try E2E.mutatePrimary(s.primary, ["--insert", "7", "--update", "5", "--delete", "3", "--soft-delete", "2"])
        let r = try E2E.reindex(["--job", s.job.path, "--format", "json"])
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
        let texts = try s.server.stats(texts: true)["texts"] as! [String]
        var expected: [String] = []
        for id in changes["inserted"]! + changes["updated"]! { expected.append(try #require(try input(s.primary, id))) }
        #expect(texts.count == expected.count + Probe.count)
        #expect(Set(texts).isSuperset(of: expected))

        // Same content as a full rebuild of the same primary.
        let reference = try E2E.writeJob(s.dir, url: s.server.url, output: "reference/vectors.db", name: "reference.yml")
        #expect(try E2E.reindex(["--job", reference.path, "--full"]).status == 0)
        let a = try E2E.items(s.output), b = try E2E.items(s.dir.appendingPathComponent("reference/vectors.db"))
        #expect(a.count == b.count)
        for (k, v) in b { #expect(a[k]?.hash == v.hash && a[k]?.vector == v.vector, "\(k)") }
        #expect(FileManager.default.fileExists(atPath: s.output.path + ".prev"))
    }

    @Test func anUnchangedPrimarySendsOnlyTheProbes() throws {
        let s = try setUp()
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        let before = try E2E.sha256(s.output)
        let r = try E2E.reindex(["--job", s.job.path, "--format", "json"])
        #expect(r.status == 0)
        let stats = try s.server.stats()
        #expect(stats["inputs"] as? Int == Probe.count)
        #expect(stats["requests"] as? Int == 1)
        #expect(try E2E.json(r.stdout)["published"] as? Bool == false)
        #expect(try E2E.sha256(s.output) == before)
        #expect(try E2E.listing(s.output.deletingLastPathComponent()) == ["vectors.db", "vectors.db.lock"])
    }

    @Test(arguments: ["missing", "garbage", "corrupt", "foreign", "model", "dimensions"])
    func automaticFullRebuild(reason: String) throws {
        let s = try setUp("auto\(reason)", publish: reason != "missing")
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        switch reason {
        case "garbage":
            try Data(repeating: 0x5A, count: 50_000).write(to: s.output)
        case "corrupt":
            var data = try Data(contentsOf: s.output)
            let page = 4096
            for i in stride(from: page * 3, to: min(data.count, page * 40), by: 97) { data[i] = 0xFF }
            try data.write(to: s.output)
        case "foreign":
            try FileManager.default.removeItem(at: s.output)
            let q = try DatabaseQueue(path: s.output.path)
            try q.write { db in try db.execute(sql: "CREATE TABLE notes(x); INSERT INTO notes VALUES (1)") }
            try q.close()
        case "model":
            let q = try DatabaseQueue(path: s.output.path)
            try q.write { db in try db.execute(sql: "UPDATE meta SET value = 'old-model' WHERE key = 'model'") }
            try q.close()
        case "dimensions":
            let q = try DatabaseQueue(path: s.output.path)
            try q.write { db in try db.execute(sql: "UPDATE meta SET value = '768' WHERE key = 'dimensions'") }
            try q.close()
        default: break
        }
        let r = try E2E.reindex(["--job", s.job.path, "--format", "json"])
        #expect(r.status == 0, "\(reason): \(r.stderr)")
        let summary = try E2E.json(r.stdout)
        let why = summary["full_reason"] as? String ?? ""
        #expect(summary["mode"] as? String == "full")
        let words = ["missing": "missing", "garbage": "not a database", "corrupt": "quick_check", "foreign": "not a reindex-vectors/1 file",
                     "model": "old-model", "dimensions": "768"]
        let matches = why.contains(words[reason]!) || (reason == "corrupt" && why.contains("malformed"))
        #expect(matches, "\(reason): full_reason \(why)")
        #expect(summary["reused"] as? Int == 0)
        #expect(try E2E.items(s.output).count == summary["embedded"] as? Int)
    }

    @Test func driftStopsBeforeAnyOtherRequestUnlessToldToRebuild() throws {
        let s = try setUp()
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        _ = try E2E.mutatePrimary(s.primary, ["--insert", "3"])
        let before = try E2E.sha256(s.output)
        try s.server.faults(["seed": 4242])
        let r = try E2E.reindex(["--job", s.job.path])
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains("model changed") && r.stderr.contains("--on-model-change=full"))
        #expect(try s.server.stats()["inputs"] as? Int == Probe.count, "only the probes were sent")
        #expect(try E2E.sha256(s.output) == before)

        let rebuilt = try E2E.reindex(["--job", s.job.path, "--on-model-change=full", "--format", "json"])
        #expect(rebuilt.status == 0, "\(rebuilt.stderr)")
        let summary = try E2E.json(rebuilt.stdout)
        #expect((summary["full_reason"] as? String ?? "").contains("model changed"))
        #expect(summary["reused"] as? Int == 0)
    }

    @Test func dryRunReportsThePlanAndTouchesNothing() throws {
        let s = try setUp()
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        let changes = try E2E.mutatePrimary(s.primary, ["--insert", "4", "--update", "3", "--delete", "2"])
        let snapshot = try FileManager.default.subpathsOfDirectory(atPath: s.dir.path).sorted()
        let hashes = try snapshot.filter { !$0.hasSuffix("out") }.map { try E2E.sha256(s.dir.appendingPathComponent($0)) }
        let r = try E2E.reindex(["--job", s.job.path, "--dry-run", "--format", "json"])
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
        #expect(try FileManager.default.subpathsOfDirectory(atPath: s.dir.path).sorted() == snapshot)
        #expect(try snapshot.filter { !$0.hasSuffix("out") }.map { try E2E.sha256(s.dir.appendingPathComponent($0)) } == hashes)
        #expect(try s.server.stats()["requests"] as? Int == 0)

        let md = try E2E.reindex(["--job", s.job.path, "--dry-run", "--format", "markdown"])
        #expect(md.stdout.contains("| message | "))
        #expect(md.stdout.contains("| **total** |"))

        // Against no vector file at all: a full plan with its reason, still nothing created.
        try FileManager.default.removeItem(at: s.dir.appendingPathComponent("out"))
        let fresh = try E2E.json(try E2E.reindex(["--job", s.job.path, "--dry-run", "--format", "json"]).stdout)
        #expect(fresh["full_reason"] as? String == "missing")
        #expect(fresh["estimated_seconds"] is NSNull)
        #expect(!FileManager.default.fileExists(atPath: s.dir.appendingPathComponent("out").path))
    }

    @Test func aSecondRunExits75AndAStaleLockDoesNotBlock() throws {
        let s = try setUp()
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        // A stale lock from a dead run: content but no holder.
        try "pid 999999, started 2020-01-01T00:00:00Z\n".write(toFile: s.output.path + ".lock", atomically: true, encoding: .utf8)
        _ = try E2E.mutatePrimary(s.primary, ["--insert", "200"])
        try s.server.faults(["delay_ms": 300])
        let first = try E2E.spawn(E2E.binary, ["--job", s.job.path])
        try E2E.wait("the first run to reach the model", timeout: 120) { (try s.server.stats()["requests"] as? Int ?? 0) >= 1 }
        let second = try E2E.reindex(["--job", s.job.path])
        #expect(second.status == 75, "\(second.stderr)")
        #expect(second.stderr.contains("pid \(first.processIdentifier)"))
        try s.server.faults([:])
        try E2E.wait("the first run", timeout: 120) { !first.isRunning }
        #expect(first.terminationStatus == 0, "\(E2E.readSpawned(first))")
    }

    @Test func metricsFileIsValidPrometheusText() throws {
        let s = try setUp()
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        let metrics = s.dir.appendingPathComponent("metrics/reindex.prom")
        _ = try E2E.mutatePrimary(s.primary, ["--insert", "2"])
        #expect(try E2E.reindex(["--job", s.job.path, "--metrics-file", metrics.path]).status == 0)
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
        let success = try #require(values[#"reindex_last_success_timestamp_seconds{job="e2e"}"#])
        #expect(abs(success - Date().timeIntervalSince1970) < 600)
        // A failed run keeps the last success time and records its exit code.
        try s.server.faults(["status_sequence": Array(repeating: 503, count: 30)])
        _ = try E2E.mutatePrimary(s.primary, ["--insert", "2", "--seed", "9"])
        #expect(try E2E.reindex(["--job", s.job.path, "--metrics-file", metrics.path]).status == 69)
        let after = try String(contentsOf: metrics, encoding: .utf8)
        #expect(after.contains(#"reindex_last_run_exit_code{job="e2e"} 69"#))
        #expect(after.contains(#"reindex_last_success_timestamp_seconds{job="e2e"} \#(Int64(success))"#))
        #expect(!FileManager.default.fileExists(atPath: metrics.path + ".tmp.\(0)"))
    }
}
