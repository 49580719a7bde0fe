import Foundation
import Testing

/// `reindex --help` and each subcommand's help, compared with the committed
/// files in Tests/EndToEndTests/Golden/. A change to an option, an abstract or
/// the exit-code list shows up here as a diff to review. After an intended
/// change, regenerate and commit the files:
///
///     REINDEX_UPDATE_GOLDEN=1 swift test --skip-build --filter HelpTests
///
/// (that run rewrites the files and fails on purpose, so it never passes
/// unnoticed; the next run without the variable must pass).
@Suite struct HelpTests {
    static let golden = E2E.root.appendingPathComponent("Tests/EndToEndTests/Golden")
    static var updating: Bool { ProcessInfo.processInfo.environment["REINDEX_UPDATE_GOLDEN"] == "1" }
    /// ArgumentParser wraps help at $COLUMNS (before asking the terminal): fixed, so the files are stable.
    static let env = ["COLUMNS": "100", "LINES": "50"]

    @Test(arguments: [
        ("reindex-help.txt", ["--help"]),
        ("help-run.txt", ["help", "run"]),
        ("verify-help.txt", ["verify", "--help"]),
        ("search-help.txt", ["search", "--help"]),
        ("doctor-help.txt", ["doctor", "--help"]),
        ("rollback-help.txt", ["rollback", "--help"]),
    ])
    func helpMatchesTheGoldenFile(file: String, args: [String]) throws {
        let r = try E2E.reindex(args, env: Self.env, timeout: 60)
        #expect(r.status == 0, "reindex \(args.joined(separator: " ")) exited \(r.status): \(r.stderr)")
        #expect(r.stderr.isEmpty, "help goes to stdout: \(r.stderr)")
        #expect(r.stdout.contains("USAGE: reindex"), "\(r.stdout)")
        let url = Self.golden.appendingPathComponent(file)
        if Self.updating {
            try r.stdout.write(to: url, atomically: true, encoding: .utf8)
            Issue.record("REINDEX_UPDATE_GOLDEN=1: rewrote \(url.path); review and commit it, then run again without the variable")
            return
        }
        let expected = try String(contentsOf: url, encoding: .utf8)
        // A mismatch is reported as a diff (the whole texts would bury the changed line).
        if r.stdout != expected {
            Issue.record("""
                `reindex \(args.joined(separator: " "))` differs from Tests/EndToEndTests/Golden/\(file) (- golden, + actual):
                \(Self.diff(expected, r.stdout))
                If the change is intended: REINDEX_UPDATE_GOLDEN=1 swift test --skip-build --filter HelpTests, review the files, commit them.
                """)
        }
    }

    /// The release version (Sources/ReindexKit/Reporting/ReindexVersion.swift); update both on a release.
    @Test func versionPrintsTheReleaseNumber() throws {
        let r = try E2E.reindex(["--version"], timeout: 60)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "0.2.0\n")
        #expect(r.stderr.isEmpty, "\(r.stderr)")
    }

    @Test func theDiffShowsRemovedAndAddedLines() {
        let d = Self.diff("a\nb\nc\nd\ne\nf\ng\n", "a\nb\nC\nd\ne\nf\ng \n")
        #expect(d == "  a\n  b\n- c\n+ C\n  d\n  e\n  f\n- g\n+ g·\n  ", "\(d)")
    }

    /// A line diff (longest common subsequence): unchanged lines as "  ", removed "- ", added "+ ",
    /// with two lines of context around each change. Whitespace at line ends is made visible ("·").
    static func diff(_ old: String, _ new: String) -> String {
        let a = old.components(separatedBy: "\n"), b = new.components(separatedBy: "\n")
        var lcs = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
            }
        }
        func show(_ line: String) -> String {
            let trimmed = line.replacingOccurrences(of: #"\s+$"#, with: "", options: .regularExpression)
            return trimmed + String(repeating: "·", count: line.count - trimmed.count)
        }
        var lines: [(mark: Character, text: String)] = []
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if i < a.count, j < b.count, a[i] == b[j] { lines.append((" ", a[i])); i += 1; j += 1 }
            else if i < a.count, j == b.count || lcs[i + 1][j] >= lcs[i][j + 1] { lines.append(("-", a[i])); i += 1 }
            else { lines.append(("+", b[j])); j += 1 }
        }
        let changed = lines.indices.filter { lines[$0].mark != " " }
        let keep = Set(changed.flatMap { max(0, $0 - 2)...min(lines.count - 1, $0 + 2) })
        var out: [String] = []
        var skipped = false
        for (n, line) in lines.enumerated() {
            if keep.contains(n) { out.append("\(line.mark) \(show(line.text))"); skipped = false }
            else if !skipped { out.append("  …"); skipped = true }
        }
        return out.joined(separator: "\n")
    }
}
