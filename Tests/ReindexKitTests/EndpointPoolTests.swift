import Foundation
import Logging
import Testing
@testable import ReindexKit

/// issue 16: choosing an endpoint, the health state machine, latency
/// figures, the `model.endpoints` key, and the pool with fake servers.
struct EndpointPoolTests {
    typealias C = EndpointSelection.Candidate

    // MARK: Selection

    @Test func picksTheLeastLoadedByInFlightOverWeight() {
        #expect(EndpointSelection.pick([C(healthy: true, inFlight: 2, concurrency: 4, weight: 1),
                                        C(healthy: true, inFlight: 1, concurrency: 4, weight: 1)]) == 1)
        // 3 in flight at weight 2 (1.5) is less loaded than 2 at weight 1 (2).
        #expect(EndpointSelection.pick([C(healthy: true, inFlight: 2, concurrency: 8, weight: 1),
                                        C(healthy: true, inFlight: 3, concurrency: 8, weight: 2)]) == 1)
    }

    @Test func tiesGoToTheLargerWeightThenTheFirstListed() {
        #expect(EndpointSelection.pick([C(healthy: true, inFlight: 0, concurrency: 4, weight: 1),
                                        C(healthy: true, inFlight: 0, concurrency: 4, weight: 3)]) == 1)
        #expect(EndpointSelection.pick([C(healthy: true, inFlight: 1, concurrency: 4, weight: 1),
                                        C(healthy: true, inFlight: 1, concurrency: 4, weight: 1)]) == 0)
    }

    @Test func skipsUnhealthyAndFullEndpoints() {
        #expect(EndpointSelection.pick([C(healthy: false, inFlight: 0, concurrency: 4, weight: 1),
                                        C(healthy: true, inFlight: 3, concurrency: 4, weight: 1)]) == 1)
        #expect(EndpointSelection.pick([C(healthy: true, inFlight: 4, concurrency: 4, weight: 1),
                                        C(healthy: false, inFlight: 0, concurrency: 4, weight: 1)]) == nil)
        #expect(EndpointSelection.pick([]) == nil)
    }

    @Test func weightsShareTheWorkInProportion() {
        // Requests that never finish: the counts follow the weights 3:1.
        var c = [C(healthy: true, inFlight: 0, concurrency: 100, weight: 3), C(healthy: true, inFlight: 0, concurrency: 100, weight: 1)]
        for _ in 0..<40 { c[EndpointSelection.pick(c)!].inFlight += 1 }
        #expect(c[0].inFlight == 30 && c[1].inFlight == 10)
    }

    // MARK: Health

    let policy = EndpointHealth.Policy(serverErrorStreak: 3, maxRetries: 2, takesOut: true)

    func healthy() -> EndpointHealth {
        var h = EndpointHealth()
        h.probeAgreed()
        return h
    }

    @Test func aConnectionErrorOrTimeoutTakesItOutWithBackoff() {
        var h = healthy()
        do { let out = h.record(.connection("refused"), now: 10, policy: policy); #expect(out) }
        #expect(h.state == .out(until: 10.25) && h.strikes == 1 && h.reason == "refused")
        #expect(!h.isDue(now: 10.2) && h.isDue(now: 10.25))
        var t = healthy()
        do { let out = t.record(.timeout("no answer in 30 s"), now: 0, policy: policy); #expect(out) }
        #expect(!t.isHealthy)
    }

    @Test func onlyAStreakOfServerErrorsTakesItOut() {
        var h = healthy()
        do { let out = h.record(.serverError("HTTP 503"), now: 0, policy: policy); #expect(!out) }
        do { let out = h.record(.serverError("HTTP 503"), now: 0, policy: policy); #expect(!out) }
        do { let out = h.record(.answered, now: 0, policy: policy); #expect(!out) }
        do { let out = h.record(.serverError("HTTP 500"), now: 0, policy: policy); #expect(!out) }
        do { let out = h.record(.serverError("HTTP 500"), now: 0, policy: policy); #expect(!out) }
        do { let out = h.record(.serverError("HTTP 502"), now: 0, policy: policy); #expect(out) }
        #expect(h.reason?.contains("3 server errors in a row") == true && h.reason?.contains("HTTP 502") == true)
    }

    @Test func throttlingNeverTakesItOut() {
        var h = healthy()
        for _ in 0..<10 { let out = h.record(.throttled("HTTP 429"), now: 0, policy: policy); #expect(!out) }
        #expect(h.isHealthy)
    }

    @Test func oneEndpointIsNeverTakenOut() {
        var h = healthy()
        let one = EndpointHealth.Policy(maxRetries: 2, takesOut: false)
        do { let out = h.record(.connection("refused"), now: 0, policy: one); #expect(!out) }
        for _ in 0..<5 { let out = h.record(.serverError("HTTP 503"), now: 0, policy: one); #expect(!out) }
        #expect(h.isHealthy && h.strikes == 0)
    }

    @Test func backoffGrowsWithStrikesUntilItIsGone() {
        var h = healthy()
        h.record(.connection("refused"), now: 0, policy: policy)
        #expect(h.state == .out(until: 0.25) && !h.isGone(policy))
        h.startProbe()
        #expect(h.state == .probing && !h.isGone(policy))
        h.probeFailed("refused", now: 1, policy: policy)
        #expect(h.state == .out(until: 1.5) && h.strikes == 2 && !h.isGone(policy))
        h.startProbe()
        h.probeFailed("refused", now: 2, policy: policy)
        #expect(h.state == .out(until: 3) && h.strikes == 3 && h.isGone(policy))  // past maxRetries 2
        #expect(EndpointHealth.Policy().backoff(strikes: 20) == 30)
    }

    @Test func aProbeBringsItBackButOnlyARealAnswerResetsStrikes() {
        var h = healthy()
        h.record(.connection("refused"), now: 0, policy: policy)
        h.startProbe()
        h.probeAgreed()
        #expect(h.isHealthy && h.strikes == 1)
        h.record(.connection("refused"), now: 5, policy: policy)
        #expect(h.strikes == 2 && h.state == .out(until: 5.5))
        h.startProbe()
        h.probeAgreed()
        h.record(.answered, now: 6, policy: policy)
        #expect(h.strikes == 0 && h.reason == nil)
    }

    @Test func failuresWhileOutOrRefusedSendTheRequestElsewhere() {
        var h = healthy()
        h.record(.connection("refused"), now: 0, policy: policy)
        // Requests that were in flight when it went out: no second strike.
        do { let out = h.record(.connection("refused"), now: 0, policy: policy); #expect(out) }
        do { let out = h.record(.answered, now: 0, policy: policy); #expect(out) }
        #expect(h.strikes == 1)
        var r = healthy()
        r.refuse("another model")
        #expect(r.isRefused && r.isGone(policy) && !r.isHealthy)
        do { let out = r.record(.answered, now: 0, policy: policy); #expect(out) }
    }

    // MARK: Latency

    @Test func latencyMeanAndP95() {
        var s = EndpointStats()
        #expect(s.meanSeconds == nil && s.p95Seconds == nil)
        for i in 1...100 { s.answered(after: Double(i) / 1000) }  // 1 ms … 100 ms
        #expect(abs(s.meanSeconds! - 0.0505) < 1e-9)
        let p95 = s.p95Seconds!
        #expect(p95 > 0.095 * 0.95 && p95 < 0.095 * 1.05)
        var one = EndpointStats()
        one.answered(after: 0.0024)
        #expect(one.p95Seconds == 0.0024)
    }

    // MARK: The job file

    func model(_ block: String) throws -> ModelConfig {
        let yaml = """
            name: j
            primary: /p.db
            output: /o.db
            sources:
              - name: m
                query: SELECT id, content AS text FROM "Message"
            model:
              provider: openai
              name: m
              dimensions: 8
              concurrency: 3
            \(block)
            """
        return try JobConfig.parse(yaml: yaml, file: "/j.yml", environment: ["B": "http://b:2"]).model
    }

    @Test func endpointsAreURLsOrMappings() throws {
        let m = try model("""
              endpoints:
                - http://a:1
                - url: ${B}
                  weight: 2.5
                  concurrency: 8
                - unix:/run/embed.sock
            """)
        #expect(m.endpoints == [ModelEndpoint(url: "http://a:1"), ModelEndpoint(url: "http://b:2", weight: 2.5, concurrency: 8),
                                ModelEndpoint(url: "unix:/run/embed.sock")])
        #expect(m.url == "http://a:1" && m.fleet.count == 3)
        #expect(m.totalConcurrency == 3 + 8 + 3)
        #expect(m.serving(m.endpoints[1]).url == "http://b:2" && m.serving(m.endpoints[1]).concurrency == 8)
        var overridden = m
        overridden.override(url: "http://c:3")
        #expect(overridden.fleet == [ModelEndpoint(url: "http://c:3")] && overridden.totalConcurrency == 3)
    }

    @Test func theOneURLFormIsAFleetOfOne() throws {
        let m = try model("  url: http://a:1")
        #expect(m.endpoints.isEmpty && m.fleet == [ModelEndpoint(url: "http://a:1")] && m.totalConcurrency == 3)
    }

    @Test(arguments: [
        ("  url: http://a:1\n  endpoints: [http://b:2]", "model.endpoints", "not both"),
        ("", "model.url", "model.endpoints"),
        ("  endpoints: []", "model.endpoints", "non-empty list"),
        ("  endpoints: http://a:1", "model.endpoints", "non-empty list"),
        ("  endpoints: [ftp://a]", "model.endpoints[0]", "http://"),
        ("  endpoints: [http://a:1, http://a:1/]", "model.endpoints[1]", "the same server twice"),
        ("  endpoints:\n    - url: http://a:1\n      weight: 0", "model.endpoints[0].weight", "from 0.001"),
        ("  endpoints:\n    - url: http://a:1\n      concurrency: 65", "model.endpoints[0].concurrency", "from 1 to 64"),
        ("  endpoints:\n    - url: http://a:1\n      speed: 2", "model.endpoints[0].speed", "unknown key"),
        ("  endpoints:\n    - weight: 2", "model.endpoints[0].url", "missing"),
    ])
    func badEndpointsAreRefusedNamingTheKey(_ block: String, _ key: String, _ says: String) {
        do {
            _ = try model(block)
            Issue.record("accepted: \(block)")
        } catch let error as ReindexError {
            #expect(error.exitCode == 64)
            guard case .jobFile(_, let k, let detail) = error else { Issue.record("\(error)"); return }
            #expect(k == key)
            #expect(detail.contains(says), "\(detail)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func credentialsNeverReachAMessage() {
        #expect(HTTPRequest.redacted("https://user:s3cret@api.example.com/v1?key=abc") == "https://***@api.example.com/v1")
        #expect(HTTPRequest.redacted("http://127.0.0.1:8080/x") == "http://127.0.0.1:8080/x")
        #expect(HTTPRequest.redacted("http://a:1/path@x") == "http://a:1/path@x")
        var m = ModelConfig(provider: .openai, url: "https://u:p@h:1/", name: "m", dimensions: 4)
        #expect(Endpoint(model: m, apiKey: nil).display == "https://***@h:1")
        m.url = "unix:/run/s.sock"
        #expect(Endpoint(model: m, apiKey: nil).display == "unix:/run/s.sock")
    }

    // MARK: The pool, with fake servers

    /// A server that answers each input with a fixed vector (its "model"), or fails.
    final class FakeServer: EmbeddingClient, @unchecked Sendable {
        let lock = NSLock()
        var down = false
        var seed: Float
        var calls = 0
        init(seed: Float) { self.seed = seed }
        func embed(_ inputs: [String]) async throws -> EmbeddingReply {
            let (isDown, s) = lock.withLock { calls += 1; return (down, seed) }
            if isDown { throw TransportError(kind: .connect, message: "connection refused") }
            return .vectors(inputs.map { t in [s, Float(t.count % 7) + 1, 1, 1] })
        }
        var description: String { "fake" }
        var count: Int { lock.withLock { calls } }
    }

    func pool(_ servers: [FakeServer], maxRetries: Int = 2) -> (EndpointPool, BatchEmbedder) {
        var m = ModelConfig(provider: .openai, url: "http://x", name: "m", dimensions: 4)
        m.maxRetries = maxRetries
        let counters = RunCounters()
        let logger = Logger(label: "test")
        let members = servers.enumerated().map { i, s in
            EndpointPool.Member(display: "http://e\(i)", weight: 1, concurrency: 2, client: s)
        }
        let pool = EndpointPool(members: members, model: m, counters: counters, logger: logger)
        let embedder = BatchEmbedder(pool: pool, model: m, counters: counters, stop: StopSignal(), logger: logger, limit: BatchLimit(8))
        return (pool, embedder)
    }

    func rows(_ n: Int) -> [PendingChunk] { (0..<n).map { PendingChunk(source: "s", sourceID: "\($0)", input: "text \($0)") } }

    @Test func admissionRefusesAnotherModelAndTheRestCarryTheRun() async throws {
        let a = FakeServer(seed: 1), b = FakeServer(seed: -50)
        let (pool, embedder) = pool([a, b])
        guard case .agreed(let probes) = try await pool.admit(stored: []) else { Issue.record("drift"); return }
        #expect(probes.count == Probe.texts.count)
        let report = pool.report()
        #expect(report[0].state == "healthy" && report[1].state == "refused")
        #expect(report[1].reason?.contains("another model") == true && report[1].reason?.contains("http://e0") == true)
        let bCalls = b.count
        let result = try await embedder.embed(rows(20))
        #expect(result.items.count == 20 && b.count == bCalls)
    }

    @Test func whenAllDisagreeWithTheLiveFileItIsDrift() async throws {
        let a = FakeServer(seed: -50), b = FakeServer(seed: -50)
        let (pool, _) = pool([a, b])
        let (old, _) = self.pool([FakeServer(seed: 1), FakeServer(seed: 1)])
        guard case .agreed(let stored) = try await old.admit(stored: []) else { Issue.record("no probes"); return }
        guard case .drift(let why) = try await pool.admit(stored: stored) else { Issue.record("no drift"); return }
        #expect(why.contains("http://e0") && why.contains("http://e1"))
        // --on-model-change=full: the first listed becomes the reference, the other agrees with it.
        #expect(pool.rebase().count == Probe.texts.count)
        #expect(pool.report().map(\.state) == ["healthy", "healthy"])
    }

    @Test func aDeadEndpointIsTakenOutAndItsRequestsGoElsewhere() async throws {
        let a = FakeServer(seed: 1), b = FakeServer(seed: 1)
        let (pool, embedder) = pool([a, b])
        _ = try await pool.admit(stored: [])
        a.lock.withLock { a.down = true }
        let result = try await embedder.embed(rows(8))
        #expect(result.items.count == 8)
        let report = pool.report()
        #expect(report[0].state == "out" && report[0].failures >= 1 && report[0].reason == "connection refused")
        #expect(report[1].state == "healthy" && report[1].inputs >= 8)
    }

    @Test func withNoEndpointLeftTheErrorNamesEach() async throws {
        let a = FakeServer(seed: 1), b = FakeServer(seed: 1)
        let (pool, embedder) = pool([a, b], maxRetries: 1)
        _ = try await pool.admit(stored: [])
        a.lock.withLock { a.down = true }
        b.lock.withLock { b.down = true }
        do {
            _ = try await embedder.embed(rows(4))
            Issue.record("no error")
        } catch let error as ReindexError {
            #expect(error.exitCode == 69)
            let text = error.description
            #expect(text.contains("no endpoint left") && text.contains("http://e0: connection refused") && text.contains("http://e1: connection refused"), "\(text)")
        }
    }

    @Test func oneEndpointRetriesAsItAlwaysDid() async throws {
        let a = FakeServer(seed: 1)
        let (pool, embedder) = pool([a], maxRetries: 1)
        #expect(!pool.isFleet && pool.report()[0].state == "healthy")
        a.lock.withLock { a.down = true }
        do {
            _ = try await embedder.embed(rows(2))
            Issue.record("no error")
        } catch let error as ReindexError {
            #expect(error.description.contains("gave up after 2 attempts"), "\(error)")
        }
        #expect(a.count == 2 && pool.report()[0].state == "healthy")
    }
}
