import Foundation
import Testing

/// Bad job files are refused before any work with exit 64, naming file, key and expectation.
struct JobFileTests {
    /// A small primary and exactly this job file; no model server (nothing may reach one).
    func harness(_ yaml: String, _ name: String = #function) throws -> Harness {
        let h = try Harness(name, server: nil, primary: .init(messages: 20, knowledge: 2), job: nil)
        do { try h.writeJob(yaml: yaml) } catch { h.cleanup(); throw error }
        return h
    }

    static let base = """
        name: t
        primary: primary.db
        output: out/v.db
        sources:
          - name: message
            query: SELECT id, content AS text FROM "Message"
        model:
          provider: openai
          url: http://127.0.0.1:9
          name: m
          dimensions: 384

        """

    @Test(arguments: [
        ("unknown key", base + "colour: blue\n", "colour: unknown key"),
        ("wrong type", base.replacingOccurrences(of: "dimensions: 384", with: "dimensions: many"), "model.dimensions: expected an integer"),
        ("missing column", base.replacingOccurrences(of: "content AS text", with: "content"), "no column named \"text\""),
        ("not read-only", base.replacingOccurrences(of: #"SELECT id, content AS text FROM "Message""#, with: #"DELETE FROM "Message" RETURNING id, content AS text"#), "not read-only"),
        ("bad provider", base.replacingOccurrences(of: "provider: openai", with: "provider: magic"), "model.provider: expected one of openai, ollama, tei"),
        ("nested unknown", base + "  batchsize: 3\n", "model.batchsize: unknown key"),
        ("missing model", base.components(separatedBy: "model:")[0], "model: missing"),
        ("unset variable", base.replacingOccurrences(of: "name: m\n", with: "name: ${REINDEX_UNSET_VAR_X}\n"), "REINDEX_UNSET_VAR_X is not set"),
    ])
    func refused(_ name: String, _ yaml: String, _ expected: String) throws {
        let h = try harness(yaml)
        defer { h.cleanup() }
        let r = try h.runJob(["--full"])
        #expect(r.status == 64, "\(name): \(r.stderr)")
        #expect(r.stderr.contains(expected), "\(name): \(r.stderr)")
        #expect(r.stderr.contains("job.yml") || r.stderr.contains("source \"message\""), "\(name) names the file or source: \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: h.dir.appendingPathComponent("out").path), "\(name): nothing may be created")
    }

    @Test(arguments: [false, true])
    func duplicateIdsAreRefusedByRunsAndDryRunsAlike(dryRun: Bool) throws {
        let yaml = Self.base.replacingOccurrences(of: #"SELECT id, content AS text FROM "Message""#,
                                                  with: #"SELECT id, content AS text FROM "Message" UNION ALL SELECT id, content FROM "Message""#)
        let h = try harness(yaml, "dup\(dryRun)")
        defer { h.cleanup() }
        let r = try h.runJob([dryRun ? "--dry-run" : "--full"])
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains("twice") && r.stderr.contains("ids must be unique within a source"), "\(r.stderr)")
    }
}
