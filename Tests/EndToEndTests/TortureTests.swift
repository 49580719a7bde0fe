import Foundation
import Testing

/// Issue 18: the short torture test. fixtures/torture.py kills `reindex` with
/// SIGKILL 10 times at random moments of full and incremental runs (crash
/// points, including the publish, and external kills after a random delay)
/// while two writers change the primary; after every kill the live file must
/// be a complete published file, and after a final run `reindex verify` must
/// pass. `make torture` runs the long version (50 kills, TORTURE_KILLS).
@Suite("Torture: kill -9 at random moments", .serialized)
struct TortureTests {
    @Test("10 kills while the primary changes: the live file is always complete, the final one equals the primary")
    func tenKills() throws {
        let script = E2E.root.appendingPathComponent("fixtures/torture.py").path
        let r = try E2E.run(E2E.python, [script, "--kills", "10", "--messages", "600", "--knowledge", "20",
                                         "--bin", E2E.binary, "--max-seconds", "150"], timeout: 240)
        let summary = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
        #expect(r.status == 0, "\(summary)\n\(r.stderr.suffix(3000))")
        #expect(summary.hasPrefix("torture: ok, 10 kills"), "\(summary)")
        // A bound, not an exact figure: a run sends each row at most once (a full run re-embeds
        // everything, a resumed one only what was not committed), plus the first run and the final one.
        let attempts = summary.range(of: #"[0-9]+ attempts"#, options: .regularExpression).flatMap { Double(summary[$0].split(separator: " ")[0]) }
        let perRow = summary.range(of: #"\([0-9.]+ per row\)"#, options: .regularExpression).flatMap { Double(summary[$0].dropFirst().split(separator: " ")[0]) }
        if let attempts, let perRow {
            #expect(perRow <= attempts + 2.5, "\(summary)")
        } else {
            Issue.record("no attempts or inputs-per-row figure in \(summary)")
        }
    }
}
