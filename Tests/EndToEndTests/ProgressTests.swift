import Foundation
import Testing

/// Progress on stderr: a redrawn bar on a TTY, plain periodic lines otherwise,
/// nothing but errors and the summary with --quiet.
@Suite(.serialized) struct ProgressTests {
    /// Items the job embeds from the default primary (1,300 messages, 75 knowledge entries):
    /// live, non-blank rows.
    static let total = 1336

    func harness(_ name: String = #function) throws -> Harness {
        // Slow answers: the embed stage lasts several seconds.
        try Harness(name, server: .init(faults: ["delay_ms": 400]), primary: .init(messages: 1300),
                    job: .init(model: ["batch-size": "32", "concurrency": "2"]))
    }

    @Test func aTerminalGetsABarWithRateAndETA() throws {
        let h = try harness()
        defer { h.cleanup() }
        let typescript = h.dir.appendingPathComponent("typescript")
        // script(1) gives the process a pseudo-terminal, as a person's shell would.
        let r = try E2E.run("/usr/bin/script", ["-qec", "\(E2E.binary) --job \(h.job.path) --full", typescript.path])
        #expect(r.status == 0)
        let screen = String(decoding: try Data(contentsOf: typescript), as: UTF8.self)
        #expect(screen.contains("\r"), "the bar is redrawn in place")
        #expect(screen.contains("items/s") && screen.contains("ETA"))

        // Each frame: "\r" + 30 cells + " done/total  pct%  rate items/s ETA m:ss".
        let frame = try Regex(#"\r([█░]{30}) (\d+)/(\d+) +(\d+)% +(\d+) items/s ETA ((\d+:)?\d+:\d\d) "#)
        let frames = screen.matches(of: frame).map { m in
            (bar: String(m.output[1].substring!), done: Int(m.output[2].substring!)!, total: Int(m.output[3].substring!)!,
             pct: Int(m.output[4].substring!)!, rate: Int(m.output[5].substring!)!)
        }
        try #require(frames.count >= 3, "no bar frames in: \(screen.debugDescription.prefix(2000))")
        #expect(frames.allSatisfy { $0.total == Self.total }, "totals: \(Set(frames.map(\.total)))")
        let counts = frames.map(\.done)
        #expect(counts == counts.sorted(), "the count never goes back: \(counts)")
        #expect(counts.contains { $0 > 0 && $0 < Self.total }, "a frame drawn mid-run: \(counts)")
        #expect(frames.contains { $0.done > 0 && $0.done < Self.total && $0.rate > 0 }, "a rate while embedding")
        for f in frames {
            let filled = f.bar.filter { $0 == "█" }.count
            #expect(filled == Int(Double(f.done) / Double(f.total) * 30), "bar \(f.bar) for \(f.done)/\(f.total)")
            #expect(f.pct == Int((Double(f.done) / Double(f.total) * 100).rounded(.toNearestOrEven)), "\(f.pct)% for \(f.done)/\(f.total)")
        }
        let last = try #require(frames.last)
        #expect(last.done == Self.total && last.pct == 100 && last.bar == String(repeating: "█", count: 30), "final frame: \(last)")
        #expect(screen.contains(" ETA 0:00 \n") || screen.contains(" ETA 0:00 \r\n"), "the final frame ends the line with ETA 0:00")
    }

    @Test func withoutATerminalPlainLinesAndQuietMeansQuiet() throws {
        let h = try harness()
        defer { h.cleanup() }
        let r = try h.runJob(["--full"])
        #expect(r.status == 0)
        #expect(!r.stderr.contains("\r"))
        #expect(r.stderr.contains("progress") && r.stderr.contains("eta_s="), "a plain line every few seconds: \(r.stderr)")
        #expect(r.stderr.contains("total=\(Self.total)"), "the plain line carries the real total: \(r.stderr)")
        let quiet = try h.runJob(["--full", "--restart", "--quiet"])
        #expect(quiet.status == 0)
        #expect(quiet.stderr.isEmpty, "quiet run wrote: \(quiet.stderr)")
        #expect(quiet.stdout.contains("published"))
    }
}
