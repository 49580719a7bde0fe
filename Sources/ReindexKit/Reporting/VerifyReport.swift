import Foundation

/// What `reindex verify` found: the checks that passed, the problems (any
/// problem means exit 65) and notes that are not problems.
public struct VerifyReport: Sendable {
    /// A count and the first few ids (sorted) of one kind of discrepancy.
    public typealias IDList = SourceDiff.IDList

    public struct SourceCheck: Sendable {
        public var name: String
        /// Rows of the primary the job would embed.
        public var eligible = 0
        /// Of those, items with the current content hash.
        public var present = 0
        public var missing = IDList()
        public var stale = IDList()
        public var extra = IDList()
        /// Rows recorded in `failures` (the model rejected them): reported, not a problem.
        public var failed = IDList()

        public init(name: String) { self.name = name }

        /// The verify vocabulary of a diff: missing, stale, extra.
        init(_ diff: SourceDiff) {
            name = diff.name
            eligible = diff.staged
            present = diff.unchanged
            missing = diff.new
            stale = diff.changed
            extra = diff.removed
            failed = diff.failed
        }

        var json: [String: Any] {
            ["eligible": eligible, "present": present, "missing": missing.count, "stale": stale.count,
             "extra": extra.count, "failed": failed.count,
             "samples": ["missing": missing.ids, "stale": stale.ids, "extra": extra.ids, "failed": failed.ids]]
        }
    }

    public var output: String
    public var passed: [String] = []
    public var problems: [String] = []
    public var notes: [String] = []
    public var sources: [SourceCheck] = []
    public var scanned = 0
    public var items = 0
    public var vecIndex = false
    public var vecChecked = false

    public init(output: String) { self.output = output }

    public var consistent: Bool { problems.isEmpty }

    mutating func problem(_ text: String) { problems.append(text) }
    mutating func passed(_ check: String) { passed.append(check) }
    mutating func note(_ text: String) { notes.append(text) }

    /// The error `verify` exits with (65) when the file is not consistent.
    public var error: ReindexError? {
        guard !consistent else { return nil }
        let first = problems.prefix(3).joined(separator: "; ")
        return .inconsistent(detail: problems.count > 3 ? "\(first); … \(problems.count - 3) more (see the report)" : first)
    }

    public func json() -> String {
        var sourcesJSON: [String: Any] = [:]
        for s in sources { sourcesJSON[s.name] = s.json }
        return Report.encode([
            "output": output, "consistent": consistent, "passed": passed, "problems": problems, "notes": notes,
            "items": items, "scanned": scanned, "sources": sourcesJSON,
            "vec_items": ["present": vecIndex, "checked": vecChecked],
            "exit_code": Int(consistent ? ExitCodes.success : ExitCodes.dataError),
        ])
    }

    public func text() -> String {
        var lines = ["reindex verify \(output): \(consistent ? "consistent" : "INCONSISTENT (\(problems.count) problem\(problems.count == 1 ? "" : "s"))")"]
        if !passed.isEmpty { lines.append("  passed: \(passed.joined(separator: ", "))") }
        for s in sources {
            var line = "  \(s.name): \(s.present) of \(s.eligible) eligible rows present"
            if s.failed.count > 0 { line += ", \(s.failed.count) recorded as failed" }
            line += ", missing \(s.missing.count), stale \(s.stale.count), extra \(s.extra.count)"
            lines.append(line)
        }
        lines.append("  items: \(items); vec_items: \(vecIndex ? (vecChecked ? "present, checked" : "present, not checked") : "absent")")
        for p in problems { lines.append("  problem: \(p)") }
        for n in notes { lines.append("  note: \(n)") }
        return lines.joined(separator: "\n")
    }
}
