import Foundation
import Testing
@testable import ReindexKit

struct JobConfigTests {
    let yaml = """
        name: groupgpt
        primary: ../fixtures/groupgpt.db
        output: ${OUT_DIR}/vectors.db
        sources:
          - name: message
            query: SELECT id, content AS text FROM "Message"
        model:
          provider: openai
          url: http://127.0.0.1:8080
          name: all-MiniLM-L6-v2
          dimensions: 384
          api-key-env: OPENAI_API_KEY
          batch-size: 32
          concurrency: 2
        """

    @Test func parsesResolvesAndExpands() throws {
        let job = try JobConfig.parse(yaml: yaml, file: "/srv/jobs/g.yml", environment: ["OUT_DIR": "/var/lib/app"])
        #expect(job.primary == "/srv/fixtures/groupgpt.db")
        #expect(job.output == "/var/lib/app/vectors.db")
        #expect(job.model.batchSize == 32 && job.model.concurrency == 2)
        #expect(job.model.apiKeyEnv == "OPENAI_API_KEY")
        #expect(job.index == .auto)
        #expect(job.model.maxInputChars == 1_000_000)
        #expect(job.model.apiKey(environment: ["OPENAI_API_KEY": "k"]) == "k")
    }

    @Test func theClonePathKeysHaveDefaultsAndBounds() throws {
        let plain = try JobConfig.parse(yaml: yaml, file: "/j.yml", environment: ["OUT_DIR": "/x"])
        #expect(plain.compactAbove == 0.2 && plain.fullCheckRuns == 50 && plain.fullCheckHours == 24)
        let tuned = try JobConfig.parse(yaml: "compact-above: 0.05\nfull-check-runs: 7\nfull-check-hours: 1.5\n" + yaml, file: "/j.yml",
                                        environment: ["OUT_DIR": "/x"])
        #expect(tuned.compactAbove == 0.05 && tuned.fullCheckRuns == 7 && tuned.fullCheckHours == 1.5)
        #expect {
            try JobConfig.parse(yaml: "compact-above: 1.5\n" + yaml, file: "/j.yml", environment: ["OUT_DIR": "/x"])
        } throws: { error in
            "\(error)".contains("compact-above") && "\(error)".contains("from 0.0 to 1.0 (got 1.5)") && (error as? ReindexError)?.exitCode == 64
        }
    }

    @Test func refusesAKeyPastedIntoApiKeyEnv() {
        let bad = yaml.replacingOccurrences(of: "api-key-env: OPENAI_API_KEY", with: "api-key-env: sk-abc-123")
        #expect(throws: ReindexError.self) { try JobConfig.parse(yaml: bad, file: "/j.yml", environment: ["OUT_DIR": "/x"]) }
    }

    @Test func commandLineOverridesWin() throws {
        var job = try JobConfig.parse(yaml: yaml, file: "/srv/jobs/g.yml", environment: ["OUT_DIR": "/o"])
        try job.apply(primary: "/p.db", output: "/q.db", modelURL: "http://127.0.0.1:1")
        #expect(job.primary == "/p.db" && job.output == "/q.db" && job.model.url == "http://127.0.0.1:1")
    }
}
