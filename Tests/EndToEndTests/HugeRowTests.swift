import Foundation
import Testing

/// Issue 18, point 2: scan memory is bounded in bytes. Pages of source rows
/// hold at most a byte budget (16 MB), so huge rows are read a few at a time;
/// a row over `max-row-bytes` is never loaded: it is recorded in `failures`
/// (exit 3) with the reason, and every other row is published.
@Suite(.serialized) struct HugeRowTests {
    /// A primary of `count` rows of `megabytes` MB of text each, plus 20 ordinary rows.
    func makePrimary(_ path: URL, count: Int, megabytes: Int, oversized: Int = 0) throws {
        let script = """
            import sqlite3, sys
            con = sqlite3.connect(sys.argv[1])
            con.execute('CREATE TABLE doc(id INTEGER PRIMARY KEY, body TEXT NOT NULL)')
            para = 'A pasted log line that goes on and on, row %d, part %d. ' * 1
            for i in range(int(sys.argv[2])):
                con.execute('INSERT INTO doc(id, body) VALUES (?, ?)', (i + 1, ('row %d: ' % i) + ('pasted log line %d of a huge row. ' % i) * (int(sys.argv[3]) * 1024 * 1024 // 32)))
            for j in range(int(sys.argv[4])):
                con.execute('INSERT INTO doc(id, body) VALUES (?, ?)', (100000 + j, 'x' * (12 * 1024 * 1024)))
            for k in range(20):
                con.execute('INSERT INTO doc(id, body) VALUES (?, ?)', (200000 + k, 'an ordinary short row number %d' % k))
            con.commit()
            """
        let r = try E2E.run(E2E.python, ["-c", script, path.path, String(count), String(megabytes), String(oversized)], timeout: 600)
        guard r.status == 0 else { throw E2E.Failure("making the primary: \(r.stderr)") }
    }

    @Test func hugeRowsAreReadInBoundedPagesAndAnOversizedRowIsAFailure() throws {
        let h = try Harness(primary: nil, job: nil)
        defer { h.cleanup() }
        try makePrimary(h.primary, count: 40, megabytes: 5, oversized: 1)
        let job = try h.writeJob(sources: [("doc", "SELECT id, body AS text FROM doc")],
                                 model: ["max-input-chars": "20000", "chunk-tokens": "16384"], extraTop: "max-row-bytes: 8388608\n")
        let timing = h.dir.appendingPathComponent("time.txt")
        let r = try E2E.run("/usr/bin/time", ["-f", "%M", "-o", timing.path, E2E.binary, "--job", job.path, "--full", "--format", "json"], timeout: 900)
        #expect(r.status == 3, "the oversized row is a failure: \(r.stderr.suffix(2000))")
        let summary = try E2E.json(r.stdout)
        #expect(summary["failed"] as? Int == 1)
        #expect(summary["rows"] as? Int == 60, "40 huge rows (cut at max-input-chars) and 20 short ones")
        let failures = summary["failures"] as? [[String: Any]] ?? []
        #expect(failures.first?["id"] as? String == "100000")
        let reason = failures.first?["error"] as? String ?? ""
        #expect(reason.contains("max-row-bytes"), "\(reason)")
        // Peak RSS in KiB, as GNU time reports it: 40 rows of 5 MB stay far under 250 MB.
        let peakKiB = Int((try String(contentsOf: timing, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").last ?? "") ?? 0
        print("huge rows: peak RSS \(peakKiB / 1024) MiB for 40 rows of 5 MB and one of 12 MB")
        #expect(peakKiB > 0 && peakKiB < 250 * 1024, "peak RSS \(peakKiB) KiB")
        // The next run retries the oversized row (attempts 2) and still never loads it.
        let again = try h.runJob(["--format", "json"], job: job)
        #expect(again.status == 3)
        let attempts: Int? = try E2E.scalar(h.output, "SELECT attempts FROM failures WHERE source_id = '100000'")
        #expect(attempts == 2)
    }
}
