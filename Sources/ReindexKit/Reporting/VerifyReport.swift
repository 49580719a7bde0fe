import Foundation

/// What `reindex verify` found: the checks that passed, the problems (any
/// problem means exit 65) and notes that are not problems.
public struct VerifyReport: Sendable {
    /// A count and the first few ids (sorted) of one kind of discrepancy.
    public typealias IDList = SourceDiff.IDList

    public struct SourceCheck: Sendable, Encodable {
        public var name: String
        /// Rows of the primary the job would embed.
        public var eligible = 0
        /// Of those, items with the current content hash.
        public var present = 0
        public var missing = IDList()
        public var stale = IDList()
        public var extra = IDList()
        /// Present with the current content, but other attributes than the primary's.
        public var attributesChanged = IDList()
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
            attributesChanged = diff.attributesChanged
            failed = diff.failed
        }

        private enum Key: String, CodingKey {
            case eligible, present, missing, stale, extra, failed, samples
            case attributesChanged = "attributes_changed"
        }

        /// `sources.<name>`: counts, and samples of ids per kind.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: Key.self)
            try c.encode(eligible, forKey: .eligible)
            try c.encode(present, forKey: .present)
            try c.encode(missing.count, forKey: .missing)
            try c.encode(stale.count, forKey: .stale)
            try c.encode(extra.count, forKey: .extra)
            try c.encode(failed.count, forKey: .failed)
            try c.encode(attributesChanged.count, forKey: .attributesChanged)
            try c.encode(["missing": missing.ids, "stale": stale.ids, "extra": extra.ids, "failed": failed.ids,
                          "attributes_changed": attributesChanged.ids], forKey: .samples)
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

    /// One JSON object (`verify --format json`).
    public func json() -> String { Report.encode(self) }

    public func text() -> String {
        var lines = ["reindex verify \(output): \(consistent ? "consistent" : "INCONSISTENT (\(problems.count) problem\(problems.count == 1 ? "" : "s"))")"]
        if !passed.isEmpty { lines.append("  passed: \(passed.joined(separator: ", "))") }
        for s in sources {
            var line = "  \(s.name): \(s.present) of \(s.eligible) eligible rows present"
            if s.failed.count > 0 { line += ", \(s.failed.count) recorded as failed" }
            line += ", missing \(s.missing.count), stale \(s.stale.count), extra \(s.extra.count)"
            if s.attributesChanged.count > 0 { line += ", attributes changed \(s.attributesChanged.count)" }
            lines.append(line)
        }
        lines.append("  items: \(items); vec_items: \(vecIndex ? (vecChecked ? "present, checked" : "present, not checked") : "absent")")
        for p in problems { lines.append("  problem: \(p)") }
        for n in notes { lines.append("  note: \(n)") }
        return lines.joined(separator: "\n")
    }
}

extension VerifyReport: Encodable {
    private enum Key: String, CodingKey {
        case output, consistent, passed, problems, notes, items, scanned, sources
        case vecItems = "vec_items", exitCode = "exit_code"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(output, forKey: .output)
        try c.encode(consistent, forKey: .consistent)
        try c.encode(passed, forKey: .passed)
        try c.encode(problems, forKey: .problems)
        try c.encode(notes, forKey: .notes)
        try c.encode(items, forKey: .items)
        try c.encode(scanned, forKey: .scanned)
        try c.encode(Dictionary(uniqueKeysWithValues: sources.map { ($0.name, $0) }), forKey: .sources)
        try c.encode(["present": vecIndex, "checked": vecChecked], forKey: .vecItems)
        try c.encode(Int(consistent ? ExitCodes.success : ExitCodes.dataError), forKey: .exitCode)
    }
}
