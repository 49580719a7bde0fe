import Foundation
import Testing

/// Progress on stderr: a redrawn bar on a TTY, plain periodic lines otherwise,
/// nothing but errors and the summary with --quiet.
@Suite(.serialized) struct ProgressTests {
    func setUp(_ name: String = #function) throws -> (URL, EmbedServer, URL) {
        let dir = try E2E.tempDir(name)
        let server = try EmbedServer()
        try E2E.makePrimary(dir.appendingPathComponent("primary.db"), messages: 1300)
        // Slow answers: the embed stage lasts several seconds.
        try server.faults(["delay_ms": 400])
        let job = try E2E.writeJob(dir, url: server.url, model: ["batch-size": "32", "concurrency": "2"])
        return (dir, server, job)
    }

    @Test func aTerminalGetsABarWithRateAndETA() throws {
        let (dir, server, job) = try setUp()
        defer { try? FileManager.default.removeItem(at: dir); server.stop() }
        let typescript = dir.appendingPathComponent("typescript")
        // script(1) gives the process a pseudo-terminal, as a person's shell would.
        let r = try E2E.run("/usr/bin/script", ["-qec", "\(E2E.binary) --job \(job.path) --full", typescript.path])
        #expect(r.status == 0)
        let screen = String(decoding: try Data(contentsOf: typescript), as: UTF8.self)
        #expect(screen.contains("\r"), "the bar is redrawn in place")
        #expect(screen.contains("items/s") && screen.contains("ETA"))
        #expect(screen.contains("/1336") || screen.contains("/ 1336") || screen.range(of: #"\d+/\d+"#, options: .regularExpression) != nil)
    }

    @Test func withoutATerminalPlainLinesAndQuietMeansQuiet() throws {
        let (dir, server, job) = try setUp()
        defer { try? FileManager.default.removeItem(at: dir); server.stop() }
        let r = try E2E.reindex(["--job", job.path, "--full"])
        #expect(r.status == 0)
        #expect(!r.stderr.contains("\r"))
        #expect(r.stderr.contains("progress") && r.stderr.contains("eta_s="), "a plain line every few seconds: \(r.stderr)")
        let quiet = try E2E.reindex(["--job", job.path, "--full", "--restart", "--quiet"])
        #expect(quiet.status == 0)
        #expect(quiet.stderr.isEmpty, "quiet run wrote: \(quiet.stderr)")
        #expect(quiet.stdout.contains("published"))
    }
}
