import Foundation
import Testing

/// Issue 18, DESIGN.md invariant 10: every answer from a model server is
/// bounded. An answer larger than what the request can legitimately produce
/// is cut off while it streams (or at once, from its Content-Length), as are
/// endless headers and endless error bodies; the run fails as for any server
/// failure (exit 69) with an error naming the endpoint and the limit, and the
/// live file is untouched. The fixture server's `oversize` fault streams up
/// to 3 GiB per answer, so a run that did not bound it would not finish in
/// the tests' time and would grow by gigabytes.
@Suite("Bounded server answers", .serialized)
struct ResponseBoundsTests {
    /// A job that gives up quickly: one retry, a short timeout.
    static let model = ["max-retries": "1", "timeout": "60"]

    /// Publishes once, then turns the fault on and runs again.
    private func runWithFault(_ fault: [String: Any], name: String = #function, model: [String: String] = model) throws -> (Harness, E2E.Result, String) {
        let h = try Harness(name, primary: .init(messages: 200, knowledge: 10), job: .init(model: model), publish: .init(args: ["--full"]))
        let before = try E2E.sha256(h.output)
        try h.server.faults(fault)
        let r = try h.runJob(["--full"], timeout: 240)
        return (h, r, before)
    }

    @Test("an endless 200 answer is aborted while it streams: exit 69, the limit in the error, the live file untouched")
    func endlessBody() throws {
        let (h, r, before) = try runWithFault(["oversize": "stream"])
        defer { h.cleanup() }
        #expect(r.status == 69, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("got more than"), "stderr: \(r.stderr)")
        #expect(r.stderr.contains("aborted while it streamed"), "stderr: \(r.stderr)")
        #expect(r.stderr.contains(h.server.url), "the error names the endpoint: \(r.stderr)")
        #expect(r.stderr.contains("model.max-response-bytes"), "the error says what to raise: \(r.stderr)")
        #expect(try E2E.sha256(h.output) == before)
        // Retried as a server failure: the first attempt and one retry (max-retries 1).
        let stats = try h.server.stats()
        #expect((stats["requests"] as? Int ?? 0) >= 2, "stats: \(stats)")
    }

    @Test("a Content-Length beyond the limit is refused before the body is read")
    func declaredTooLarge() throws {
        let (h, r, before) = try runWithFault(["oversize": "declared"])
        defer { h.cleanup() }
        #expect(r.status == 69, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("announced \(3 << 30) bytes"), "stderr: \(r.stderr)")
        #expect(r.stderr.contains("got more than"), "stderr: \(r.stderr)")
        #expect(try E2E.sha256(h.output) == before)
    }

    @Test("endless headers are cut off at the header cap")
    func endlessHeaders() throws {
        let (h, r, before) = try runWithFault(["oversize": "headers"])
        defer { h.cleanup() }
        #expect(r.status == 69, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("bytes of headers"), "stderr: \(r.stderr)")
        #expect(try E2E.sha256(h.output) == before)
    }

    @Test("an endless error body is read only for a prefix of its message")
    func endlessErrorBody() throws {
        let (h, r, before) = try runWithFault(["oversize": "error"])
        defer { h.cleanup() }
        #expect(r.status == 69, "stderr: \(r.stderr)")
        // A 500 is retried and reported with the start of its body, not a size error.
        #expect(r.stderr.contains("HTTP 500"), "stderr: \(r.stderr)")
        #expect(!r.stderr.contains("got more than"), "stderr: \(r.stderr)")
        // The message is a bounded prefix of the body (the transport keeps 16 KiB; the message shows less).
        #expect(r.stderr.utf8.count < 64 << 10, "stderr is \(r.stderr.utf8.count) bytes")
        #expect(try E2E.sha256(h.output) == before)
    }

    @Test("model.max-response-bytes is honoured: a limit below a real answer fails, the default passes")
    func limitKeyIsHonoured() throws {
        let h = try Harness(primary: .init(messages: 200, knowledge: 10), job: .init(model: Self.model))
        defer { h.cleanup() }
        // 64 inputs × 384 float32 in base64 are about 130 KB: 4096 bytes cannot hold them.
        var model = Self.model
        model["max-response-bytes"] = "4096"
        let small = try h.writeJob("small.yml", model: model)
        let r = try h.runJob(["--full"], job: small, timeout: 240)
        #expect(r.status == 69, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("got more than 4096 bytes"), "stderr: \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: h.output.path))
        let ok = try h.runJob(["--full"], timeout: 240)
        #expect(ok.status == 0, "stderr: \(ok.stderr)")
    }

    @Test("a metadata call (TEI's GET /info) is bounded too")
    func metadataCallBounded() throws {
        var model = Self.model
        model["provider"] = "tei"
        let h = try Harness(server: .init(faults: ["oversize": "stream"]), primary: .init(messages: 50, knowledge: 5), job: .init(model: model))
        defer { h.cleanup() }
        let r = try h.runJob(["--full"], timeout: 240)
        #expect(r.status != 0, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("/info"), "stderr: \(r.stderr)")
        #expect(r.stderr.contains("got more than \(1 << 20) bytes"), "stderr: \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: h.output.path))
    }
}
