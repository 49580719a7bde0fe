import Foundation
import Testing

/// issue 16: several model endpoints (`model.endpoints`) — they share the
/// work, a killed one is taken out while the run completes, one serving
/// another model is refused, none left is exit 69, and `url` with
/// `endpoints` is exit 64. Every server is fixtures/embed_server.py; a
/// server started with another `--seed` is another model version.
@Suite(.serialized)
struct FleetTests {
    /// Inputs of one drift-probe request (`Probe.texts`).
    static let probeTexts = 4

    /// The harness's job with `model.url` replaced by `model.endpoints`.
    @discardableResult
    static func fleetJob(_ h: Harness, _ urls: [String], name: String = "fleet.yml", output: String = "out/vectors.db",
                         model: [String: String] = [:]) throws -> URL {
        let job = try h.writeJob(name, output: output, model: model)
        var yaml = try String(contentsOf: job, encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: "  url: \(h.url)\n", with: "  endpoints:\n" + urls.map { "    - \($0)\n" }.joined())
        try yaml.write(to: job, atomically: true, encoding: .utf8)
        return job
    }

    static func endpoints(_ summary: [String: Any]) -> [[String: Any]] {
        summary["endpoints"] as? [[String: Any]] ?? []
    }

    static func requests(_ server: EmbedServer) throws -> Int {
        try server.stats()["requests"] as? Int ?? 0
    }

    /// The same job on one endpoint (`url`), published to another output: the reference vectors.
    static func oneEndpointItems(_ h: Harness, url: String, model: [String: String] = [:]) throws -> [String: (hash: Data, vector: [Float])] {
        let job = try h.writeJob("one.yml", output: "one/vectors.db", model: model, url: url)
        let r = try h.runJob(["--full"], job: job)
        guard r.status == 0 else { throw E2E.Failure("one-endpoint run exited \(r.status): \(r.stderr)") }
        return try E2E.items(h.dir.appendingPathComponent("one/vectors.db"))
    }

    static func sameItems(_ a: [String: (hash: Data, vector: [Float])], _ b: [String: (hash: Data, vector: [Float])]) -> Bool {
        guard a.count == b.count else { return false }
        for (k, x) in a {
            guard let y = b[k], x.hash == y.hash, x.vector == y.vector else { return false }
        }
        return true
    }

    @Test func twoEndpointsShareTheWorkAndGiveTheSameVectors() throws {
        let h = try Harness(server: .init(faults: ["delay_ms": 20]))
        defer { h.cleanup() }
        let b = try EmbedServer()
        defer { b.stop() }
        try b.faults(["delay_ms": 20])
        let model = ["batch-size": "16", "concurrency": "2"]
        let job = try Self.fleetJob(h, [h.url, b.url], model: model)
        let r = try h.runJob(["--full", "--format", "json"], job: job)
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try E2E.json(r.stdout)
        let each = Self.endpoints(summary)
        #expect(each.map { $0["url"] as? String } == [h.url, b.url])
        #expect(each.allSatisfy { $0["state"] as? String == "healthy" && ($0["requests"] as? Int ?? 0) >= 10 && $0["failures"] as? Int == 0 }, "\(each)")
        #expect(each.allSatisfy { ($0["p95_ms"] as? Double ?? 0) >= 20 && ($0["mean_ms"] as? Double ?? 0) >= 20 }, "\(each)")
        let a = try Self.requests(h.server), bn = try Self.requests(b)
        #expect(a >= 10 && bn >= 10, "requests: \(a) and \(bn)")
        // Inputs per endpoint add up to the chunks embedded plus one set of probes each.
        let inputs = each.reduce(0) { $0 + ($1["inputs"] as? Int ?? 0) }
        #expect(inputs == (summary["embedded"] as? Int ?? -1) + 2 * Self.probeTexts)
        let fleet = try E2E.items(h.output)
        try h.server.faults([:])
        #expect(Self.sameItems(fleet, try Self.oneEndpointItems(h, url: h.url, model: model)))
    }

    @Test func anEndpointKilledMidRunIsTakenOutAndTheRunCompletes() throws {
        let h = try Harness(server: .init(faults: ["delay_ms": 80]))
        defer { h.cleanup() }
        let b = try EmbedServer()
        defer { b.stop() }
        try b.faults(["delay_ms": 80])
        let model = ["batch-size": "8", "concurrency": "3"]
        let job = try Self.fleetJob(h, [h.url, b.url], model: model)
        let done = DispatchSemaphore(value: 0)
        let result = LockedBox<E2E.Result?>(nil)
        DispatchQueue.global().async {
            let r = try? h.runJob(["--full", "--format", "json", "--metrics-file", h.dir.appendingPathComponent("metrics.prom").path], job: job)
            result.withLock { $0 = r }
            done.signal()
        }
        try E2E.wait("the second endpoint to get work", timeout: 60) { try Self.requests(b) >= 5 }
        b.stop()
        #expect(done.wait(timeout: .now() + 300) == .success)
        let r = try #require(result.withLock { $0 })
        #expect(r.status == 0, "\(r.stderr)")
        let each = Self.endpoints(try E2E.json(r.stdout))
        #expect(each.count == 2)
        #expect(each.first?["state"] as? String == "healthy")
        #expect(each.last?["state"] as? String == "out" && (each.last?["failures"] as? Int ?? 0) >= 1, "\(each)")
        #expect((each.last?["reason"] as? String ?? "").contains(b.url), "\(each)")
        #expect(r.stderr.contains("taken out of rotation") && r.stderr.contains(b.url))
        let metrics = try String(contentsOf: h.dir.appendingPathComponent("metrics.prom"), encoding: .utf8)
        #expect(metrics.contains("reindex_endpoint_up{job=\"e2e\",endpoint=\"\(b.url)\"} 0"))
        #expect(metrics.contains("reindex_endpoint_up{job=\"e2e\",endpoint=\"\(h.url)\"} 1"))
        #expect(metrics.contains("reindex_endpoint_requests{job=\"e2e\",endpoint=\"\(h.url)\"}"))
        // Vectors exact: the same as one healthy endpoint gives.
        let fleet = try E2E.items(h.output)
        try h.server.faults([:])
        #expect(Self.sameItems(fleet, try Self.oneEndpointItems(h, url: h.url, model: model)))
    }

    @Test func anEndpointServingAnotherModelIsRefusedAndNamed() throws {
        // The live file is built on the first server (seed 0); `other` serves another model version.
        let h = try Harness(publish: .init())
        defer { h.cleanup() }
        let other = try EmbedServer(extra: ["--seed", "7"])
        defer { other.stop() }
        let live = try E2E.items(h.output)
        try h.mutate(["--insert", "5", "--update", "3"])
        // Listed first, the other model is refused against the live file's probes; the run goes on with the rest.
        let job = try Self.fleetJob(h, [other.url, h.url])
        let r = try h.runJob(["--format", "json"], job: job)
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try E2E.json(r.stdout)
        #expect(summary["mode"] as? String == "incremental" && summary["embedded"] as? Int == 8)
        let each = Self.endpoints(summary)
        #expect(each.first?["url"] as? String == other.url && each.first?["state"] as? String == "refused")
        let reason = each.first?["reason"] as? String ?? ""
        #expect(reason.contains("another model") && reason.contains("live file"), "\(reason)")
        #expect(each.last?["state"] as? String == "healthy")
        #expect(r.stderr.contains("refused for this run") && r.stderr.contains(other.url))
        // The refused endpoint got the probes and not one row.
        #expect(try other.stats()["inputs"] as? Int == Self.probeTexts)
        // Unchanged rows kept their vectors; the new ones are the first server's.
        let after = try E2E.items(h.output)
        #expect(live.filter { after[$0.key]?.vector == $0.value.vector }.count == live.count - 3)
        #expect(after.count == live.count + 5)

        // A first run (--full): the first endpoint listed is the reference, so the same server is refused again.
        let full = try h.runJob(["--full", "--format", "json"], job: try Self.fleetJob(h, [h.url, other.url]))
        #expect(full.status == 0, "\(full.stderr)")
        let fullEach = Self.endpoints(try E2E.json(full.stdout))
        #expect(fullEach.map { $0["state"] as? String } == ["healthy", "refused"])
        #expect((fullEach.last?["reason"] as? String ?? "").contains(h.url))
    }

    @Test func whenEveryEndpointDisagreesWithTheLiveFileItIsDrift() throws {
        let h = try Harness(publish: .init())
        defer { h.cleanup() }
        let b = try EmbedServer(extra: ["--seed", "7"]), c = try EmbedServer(extra: ["--seed", "7"])
        defer { b.stop(); c.stop() }
        let before = try E2E.sha256(h.output)
        let job = try Self.fleetJob(h, [b.url, c.url])
        let r = try h.runJob(["--format", "json"], job: job)
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains("every endpoint that answered serves another model") && r.stderr.contains(b.url) && r.stderr.contains(c.url))
        #expect(try E2E.sha256(h.output) == before)
        #expect(try b.stats()["inputs"] as? Int == Self.probeTexts)
        // --on-model-change=full: rebuilt on both (they agree with each other).
        let full = try h.runJob(["--format", "json", "--on-model-change", "full"], job: job)
        #expect(full.status == 0, "\(full.stderr)")
        let summary = try E2E.json(full.stdout)
        #expect((summary["full_reason"] as? String ?? "").contains("model changed"))
        #expect(Self.endpoints(summary).map { $0["state"] as? String } == ["healthy", "healthy"])
        #expect(try Self.requests(b) > 1 && (try Self.requests(c)) > 1)
    }

    @Test func withEveryEndpointDownItFailsNamingEach() throws {
        let h = try Harness(server: nil)
        defer { h.cleanup() }
        let port = try E2E.freePort()
        let secret = "http://reindex:hunter2@127.0.0.1:9"
        let job = try Self.fleetJob(h, [secret, "http://127.0.0.1:\(port)"], model: ["max-retries": "1"])
        let r = try h.runJob(["--full"], job: job)
        #expect(r.status == 69, "\(r.stderr)")
        let last = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.contains("no endpoint left") && last.contains("http://***@127.0.0.1:9") && last.contains("127.0.0.1:\(port)"), "\(last)")
        #expect(!r.stderr.contains("hunter2"))
        #expect(!FileManager.default.fileExists(atPath: h.output.path))
    }

    @Test func urlAndEndpointsTogetherAreRefused() throws {
        let h = try Harness(server: nil)
        defer { h.cleanup() }
        let job = try h.writeJob(model: ["endpoints": "[http://127.0.0.1:9, http://127.0.0.1:10]"])
        let r = try h.runJob([], job: job)
        #expect(r.status == 64)
        #expect(r.stderr.contains("model.endpoints") && r.stderr.contains("not both"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: h.output.path))
    }
}
