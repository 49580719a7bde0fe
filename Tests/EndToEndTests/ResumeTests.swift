import Foundation
import Testing

/// Issue: checkpoints and resume. Runs are killed (SIGKILL) at many points;
/// rerunning the same command must publish exactly what an uninterrupted run
/// publishes, never damage the live file, and never pay twice.
@Suite(.serialized) struct ResumeTests {
    struct Setup {
        let dir: URL
        let server: EmbedServer
        let job: URL
        let output: URL
        let eligible: Int
        let baseline: [String: (hash: Data, vector: [Float])]
    }

    /// A primary, the fixture server, the reference result of an uninterrupted
    /// run, and a live output built by "another model" so any replacement shows.
    func setUp(_ name: String = #function) throws -> Setup {
        let dir = try E2E.tempDir(name)
        let server = try EmbedServer()
        try E2E.makePrimary(dir.appendingPathComponent("primary.db"))
        let reference = try E2E.writeJob(dir, url: server.url, output: "reference/vectors.db", name: "reference.yml")
        let r = try E2E.reindex(["--job", reference.path, "--full", "--format", "json"])
        guard r.status == 0 else { throw E2E.Failure("reference run failed: \(r.stderr)") }
        let eligible = try E2E.json(r.stdout)["embedded"] as! Int
        let baseline = try E2E.items(dir.appendingPathComponent("reference/vectors.db"))
        let job = try E2E.writeJob(dir, url: server.url)
        try server.faults(["seed": 99])
        guard try E2E.reindex(["--job", job.path, "--full"]).status == 0 else { throw E2E.Failure("live run failed") }
        try server.faults([:])
        try server.reset()
        return Setup(dir: dir, server: server, job: job, output: dir.appendingPathComponent("out/vectors.db"), eligible: eligible, baseline: baseline)
    }

    func expectSameAsBaseline(_ s: Setup) throws {
        let items = try E2E.items(s.output)
        #expect(items.count == s.baseline.count)
        for (key, want) in s.baseline {
            guard let got = items[key] else { Issue.record("missing \(key)"); continue }
            #expect(got.hash == want.hash && got.vector == want.vector, "item \(key) differs from the uninterrupted run")
        }
        let files = try E2E.listing(s.output.deletingLastPathComponent())
        #expect(!files.contains { $0.contains(".work") }, "work files left: \(files)")
    }

    static let points = ["scan", "batch:1", "batch:7", "batch:15", "verify", "finalize", "prev", "rename"]

    @Test(arguments: points)
    func killedAtAPointThenResumed(point: String) throws {
        let s = try setUp("kill\(point)")
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        let live = try E2E.sha256(s.output)

        let crashed = try E2E.reindex(["--job", s.job.path, "--full"], env: ["REINDEX_CRASH_AT": point])
        #expect(crashed.status == 128 + 9 || crashed.status == 9, "expected SIGKILL at \(point), got \(crashed.status): \(crashed.stderr)")
        if point == "rename" {
            // The new file is in place; it must already be complete and valid.
            #expect(try E2E.items(s.output).count == s.eligible)
        } else {
            #expect(try E2E.sha256(s.output) == live, "the live file changed after a crash at \(point)")
        }

        let resumed = try E2E.reindex(["--job", s.job.path, "--full", "--format", "json"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        try expectSameAsBaseline(s)

        let inputs = try s.server.stats()["inputs"] as! Int
        let budget = s.eligible + 64 * 4 + 2 * Probe.count
        #expect(inputs <= budget, "the server got \(inputs) inputs for \(s.eligible) rows (budget \(budget))")
        if point.hasPrefix("batch:") {
            let summary = try E2E.json(resumed.stdout)
            #expect(summary["resumed"] as? Bool == true)
            #expect((summary["carried_over"] as? Int ?? 0) >= 64 * Int(point.dropFirst(6))!)
        }
    }

    @Test func severalInterruptionsStillPayOnce() throws {
        let s = try setUp()
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        for point in ["batch:2", "batch:4", "batch:3"] {
            let r = try E2E.reindex(["--job", s.job.path, "--full"], env: ["REINDEX_CRASH_AT": point])
            #expect(r.status == 137 || r.status == 9)
        }
        #expect(try E2E.reindex(["--job", s.job.path, "--full"]).status == 0)
        try expectSameAsBaseline(s)
        let inputs = try s.server.stats()["inputs"] as! Int
        #expect(inputs <= s.eligible + 3 * 64 * 4 + 4 * Probe.count, "server got \(inputs) inputs")
    }

    @Test func externalKillNineMidRun() throws {
        let s = try setUp()
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        let live = try E2E.sha256(s.output)
        try s.server.faults(["delay_ms": 40])
        let p = try E2E.spawn(E2E.binary, ["--job", s.job.path, "--full"])
        try E2E.wait("a few committed batches", timeout: 120) { (try s.server.stats()["requests"] as? Int ?? 0) >= 6 }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(try E2E.sha256(s.output) == live)
        try s.server.faults([:])
        #expect(try E2E.reindex(["--job", s.job.path, "--full"]).status == 0)
        try expectSameAsBaseline(s)
        #expect((try s.server.stats()["inputs"] as! Int) <= s.eligible + 64 * 4 + 2 * Probe.count)
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func signalStopsGracefullyAndResumes(sig: Int32) throws {
        let s = try setUp("signal\(sig)")
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        let live = try E2E.sha256(s.output)
        try s.server.faults(["delay_ms": 40])
        let p = try E2E.spawn(E2E.binary, ["--job", s.job.path, "--full"])
        try E2E.wait("a few requests", timeout: 120) { (try s.server.stats()["requests"] as? Int ?? 0) >= 5 }
        kill(p.processIdentifier, sig)
        try E2E.wait("the process to stop", timeout: 60) { !p.isRunning }
        let stderr = E2E.readSpawned(p)
        #expect(p.terminationStatus == (sig == SIGTERM ? 143 : 130), "stderr: \(stderr)")
        #expect(stderr.contains("rerun the same command to resume"))
        #expect(try E2E.sha256(s.output) == live)
        #expect(FileManager.default.fileExists(atPath: s.output.path + ".work"))
        try s.server.faults([:])
        let resumed = try E2E.reindex(["--job", s.job.path, "--full", "--format", "json"])
        #expect(resumed.status == 0)
        #expect(try E2E.json(resumed.stdout)["resumed"] as? Bool == true)
        try expectSameAsBaseline(s)
    }

    @Test func anEditedJobDoesNotResumeForeignWork() throws {
        let s = try setUp()
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        _ = try E2E.reindex(["--job", s.job.path, "--full"], env: ["REINDEX_CRASH_AT": "batch:5"])
        // Same output, another model name: the work belongs to another job.
        let edited = try E2E.writeJob(s.dir, url: s.server.url, model: ["name": "another-model"])
        try s.server.reset()
        let r = try E2E.reindex(["--job", edited.path, "--full", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try E2E.json(r.stdout)["resumed"] as? Bool == false)
        #expect(r.stderr.contains("belongs to another job configuration"))
        #expect((try s.server.stats()["inputs"] as! Int) == s.eligible + Probe.count, "everything re-embedded, nothing carried over")
    }

    @Test func restartDiscardsTheWork() throws {
        let s = try setUp()
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        _ = try E2E.reindex(["--job", s.job.path, "--full"], env: ["REINDEX_CRASH_AT": "batch:5"])
        try s.server.reset()
        let r = try E2E.reindex(["--job", s.job.path, "--full", "--restart", "--format", "json"])
        #expect(r.status == 0)
        #expect(try E2E.json(r.stdout)["resumed"] as? Bool == false)
        #expect((try s.server.stats()["inputs"] as! Int) == s.eligible + Probe.count)
        try expectSameAsBaseline(s)
    }
}

enum Probe {
    /// Drift probes embedded once per run (ReindexKit.Probe.texts).
    static let count = 4
}
