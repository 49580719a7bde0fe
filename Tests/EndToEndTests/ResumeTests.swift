import Foundation
import Testing

/// Issue: checkpoints and resume. Runs are killed (SIGKILL) at many points;
/// rerunning the same command must publish exactly what an uninterrupted run
/// publishes, never damage the live file, and never pay twice.
@Suite(.serialized) struct ResumeTests {
    /// The result of an uninterrupted run: what every resumed run must publish.
    struct Reference {
        let eligible: Int
        let baseline: [String: (hash: Data, vector: [Float])]
    }

    /// A primary, the fixture server, the reference result of an uninterrupted
    /// run, and a live output built by "another model" so any replacement shows.
    func setUp(_ name: String = #function) throws -> (Harness, Reference) {
        let h = try Harness(name)
        do {
            let reference = try h.writeJob("reference.yml", output: "reference/vectors.db")
            let r = try h.runJob(["--full", "--format", "json"], job: reference)
            guard r.status == 0 else { throw E2E.Failure("reference run failed: \(r.stderr)") }
            let eligible = try E2E.json(r.stdout)["embedded"] as! Int
            let baseline = try E2E.items(h.dir.appendingPathComponent("reference/vectors.db"))
            try h.server.faults(["seed": 99])
            guard try h.runJob(["--full"]).status == 0 else { throw E2E.Failure("live run failed") }
            try h.server.faults([:])
            try h.server.reset()
            return (h, Reference(eligible: eligible, baseline: baseline))
        } catch {
            h.cleanup()
            throw error
        }
    }

    func expectSameAsBaseline(_ h: Harness, _ ref: Reference) throws {
        let items = try E2E.items(h.output)
        #expect(items.count == ref.baseline.count)
        for (key, want) in ref.baseline {
            guard let got = items[key] else { Issue.record("missing \(key)"); continue }
            #expect(got.hash == want.hash && got.vector == want.vector, "item \(key) differs from the uninterrupted run")
        }
        let files = try h.outListing()
        #expect(!files.contains { $0.contains(".work") }, "work files left: \(files)")
    }

    static let points = ["scan", "batch:1", "batch:7", "batch:15", "verify", "finalize", "prev", "rename"]

    @Test(arguments: points)
    func killedAtAPointThenResumed(point: String) throws {
        let (h, ref) = try setUp("kill\(point)")
        defer { h.cleanup() }
        let live = try E2E.sha256(h.output)

        let crashed = try h.runJob(["--full"], env: ["REINDEX_CRASH_AT": point])
        #expect(crashed.status == 128 + 9 || crashed.status == 9, "expected SIGKILL at \(point), got \(crashed.status): \(crashed.stderr)")
        if point == "rename" {
            // The new file is in place; it must already be complete and valid.
            #expect(try E2E.items(h.output).count == ref.eligible)
        } else {
            #expect(try E2E.sha256(h.output) == live, "the live file changed after a crash at \(point)")
        }

        let resumed = try h.runJob(["--full", "--format", "json"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        try expectSameAsBaseline(h, ref)

        let inputs = try h.server.stats()["inputs"] as! Int
        let budget = ref.eligible + 64 * 4 + 2 * Probe.count
        #expect(inputs <= budget, "the server got \(inputs) inputs for \(ref.eligible) rows (budget \(budget))")
        if point.hasPrefix("batch:") {
            let summary = try E2E.json(resumed.stdout)
            #expect(summary["resumed"] as? Bool == true)
            #expect((summary["carried_over"] as? Int ?? 0) >= 64 * Int(point.dropFirst(6))!)
        }
    }

    @Test func severalInterruptionsStillPayOnce() throws {
        let (h, ref) = try setUp()
        defer { h.cleanup() }
        for point in ["batch:2", "batch:4", "batch:3"] {
            let r = try h.runJob(["--full"], env: ["REINDEX_CRASH_AT": point])
            #expect(r.status == 137 || r.status == 9)
        }
        #expect(try h.runJob(["--full"]).status == 0)
        try expectSameAsBaseline(h, ref)
        let inputs = try h.server.stats()["inputs"] as! Int
        #expect(inputs <= ref.eligible + 3 * 64 * 4 + 4 * Probe.count, "server got \(inputs) inputs")
    }

    @Test func externalKillNineMidRun() throws {
        let (h, ref) = try setUp()
        defer { h.cleanup() }
        let live = try E2E.sha256(h.output)
        try h.server.faults(["delay_ms": 40])
        let p = try h.spawnJob(["--full"])
        try E2E.wait("a few committed batches", timeout: 120) { (try h.server.stats()["requests"] as? Int ?? 0) >= 6 }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(try E2E.sha256(h.output) == live)
        try h.server.faults([:])
        #expect(try h.runJob(["--full"]).status == 0)
        try expectSameAsBaseline(h, ref)
        #expect((try h.server.stats()["inputs"] as! Int) <= ref.eligible + 64 * 4 + 2 * Probe.count)
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func signalStopsGracefullyAndResumes(sig: Int32) throws {
        let (h, ref) = try setUp("signal\(sig)")
        defer { h.cleanup() }
        let live = try E2E.sha256(h.output)
        try h.server.faults(["delay_ms": 40])
        let p = try h.spawnJob(["--full"])
        try E2E.wait("a few requests", timeout: 120) { (try h.server.stats()["requests"] as? Int ?? 0) >= 5 }
        kill(p.processIdentifier, sig)
        try E2E.wait("the process to stop", timeout: 60) { !p.isRunning }
        let stderr = E2E.readSpawned(p)
        #expect(p.terminationStatus == (sig == SIGTERM ? 143 : 130), "stderr: \(stderr)")
        #expect(stderr.contains("rerun the same command to resume"))
        #expect(try E2E.sha256(h.output) == live)
        #expect(FileManager.default.fileExists(atPath: h.work.path))
        try h.server.faults([:])
        let resumed = try h.runJob(["--full", "--format", "json"])
        #expect(resumed.status == 0)
        #expect(try E2E.json(resumed.stdout)["resumed"] as? Bool == true)
        try expectSameAsBaseline(h, ref)
    }

    @Test func anEditedJobDoesNotResumeForeignWork() throws {
        let (h, ref) = try setUp()
        defer { h.cleanup() }
        let crashed = try h.runJob(["--full"], env: ["REINDEX_CRASH_AT": "batch:5"])
        #expect(crashed.status == 137 || crashed.status == 9, "\(crashed.stderr)")
        #expect(FileManager.default.fileExists(atPath: h.work.path), "the crashed run left work to resume")
        // Same output, another model name: the work belongs to another job.
        let edited = try h.writeJob(model: ["name": "another-model"])
        try h.server.reset()
        let r = try h.runJob(["--full", "--format", "json"], job: edited)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try E2E.json(r.stdout)["resumed"] as? Bool == false)
        #expect(r.stderr.contains("belongs to another job configuration"))
        #expect((try h.server.stats()["inputs"] as! Int) == ref.eligible + Probe.count, "everything re-embedded, nothing carried over")
    }

    @Test func restartDiscardsTheWork() throws {
        let (h, ref) = try setUp()
        defer { h.cleanup() }
        let crashed = try h.runJob(["--full"], env: ["REINDEX_CRASH_AT": "batch:5"])
        #expect(crashed.status == 137 || crashed.status == 9, "\(crashed.stderr)")
        #expect(FileManager.default.fileExists(atPath: h.work.path), "the crashed run left work that --restart must discard")
        try h.server.reset()
        let r = try h.runJob(["--full", "--restart", "--format", "json"])
        #expect(r.status == 0)
        #expect(try E2E.json(r.stdout)["resumed"] as? Bool == false)
        #expect((try h.server.stats()["inputs"] as! Int) == ref.eligible + Probe.count)
        try expectSameAsBaseline(h, ref)
    }
}

enum Probe {
    /// Drift probes embedded once per run (ReindexKit.Probe.texts).
    static let count = 4
}
