import Foundation
import Yams

/// A parsed, validated job file. Paths are absolute (relative ones are
/// resolved against the job file's directory) and `${VAR}` is expanded, so
/// the rest of the program never looks at the YAML again.
public struct JobConfig: Sendable, Equatable {
    public enum IndexMode: String, Sendable, Equatable { case auto, vec0, none }

    public struct Source: Sendable, Equatable {
        public var name: String
        public var query: String
        /// Issue 14: the query's attribute columns, sorted by name; every source declares the same.
        public var attributes: [AttributeSpec] = []
        /// `changed-column`: a column of the query whose value grows whenever
        /// a row is written (`updatedAt`). An incremental run then reads only
        /// the rows at or past the watermark the live file recorded, plus
        /// every id (to find deletions); nil = every run reads every row.
        public var changedColumn: String? = nil

        public init(name: String, query: String, attributes: [AttributeSpec] = [], changedColumn: String? = nil) {
            self.name = name
            self.query = query
            self.attributes = attributes
            self.changedColumn = changedColumn
        }
    }

    public var file: String
    public var name: String
    public var primary: String
    public var output: String
    public var index: IndexMode
    public var sources: [Source]
    public var model: ModelConfig
    // `output-mode`, the mode of the vector file, `.prev` and work files; nil = from the primary.
    public var outputMode: mode_t? = nil
    /// `max-row-bytes`: a row whose text is larger is never loaded; it is
    /// recorded in `failures` (memory stays bounded whatever a row holds).
    public var maxRowBytes: Int = 64 << 20
    /// `keywords`: the FTS5 index of every chunk's text; nil = no keyword index.
    public var keywords: KeywordSettings? = nil
    /// `compact-above`: on the clone path, `vec_items` is rebuilt once its
    /// dead slots (deleted rows sqlite-vec 0.1 does not reclaim) pass this
    /// share of all its slots.
    public var compactAbove: Double = 0.2
    /// `full-check-runs`: on the clone path, every vector of the new file is
    /// checked when this many publishing runs checked only their change.
    public var fullCheckRuns: Int = 50
    /// `full-check-hours`: … or when the last full check is this old.
    public var fullCheckHours: Double = 24

    /// The attributes every source declares, sorted by name.
    public var attributes: [AttributeSpec] { sources.first?.attributes ?? [] }

    /// Command-line overrides applied after parsing (`--primary`, `--output`, `--model-url`).
    public mutating func apply(primary: String?, output: String?, modelURL: String?) throws {
        let cwd = FileManager.default.currentDirectoryPath
        if let primary { self.primary = PrimaryLocation.isPostgres(primary) ? primary : JobConfig.absolute(primary, relativeTo: cwd) }
        if let primary, PrimaryLocation.display(primary) != primary {
            throw ReindexError.usage("--primary: the URI carries a password (got \(PrimaryLocation.display(primary)) plus a password) — remove it and put the password in PGPASSWORD, ~/.pgpass or a service file; argv is readable by every user of the host")
        }
        if let output { self.output = JobConfig.absolute(output, relativeTo: cwd) }
        if let modelURL { self.model.override(url: modelURL) }  // also replaces model.endpoints
        FilePermissions.adopt(primary: self.primary, explicitMode: outputMode)
    }

    /// Reads and validates a job file.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> JobConfig {
        let url = URL(fileURLWithPath: path)
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw ReindexError.usage("job file \(path): cannot read it (\(error.localizedDescription)) — pass an existing YAML file with --job")
        }
        let job = try parse(yaml: text, file: url.standardizedFileURL.path, environment: environment)
        FilePermissions.adopt(primary: job.primary, explicitMode: job.outputMode)
        return job
    }

    /// Parses job YAML; `file` names the job in messages and anchors relative paths.
    public static func parse(yaml: String, file: String, environment: [String: String] = [:]) throws -> JobConfig {
        let node: Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch {
            throw ReindexError.jobFile(file: file, key: "(document)", detail: "not valid YAML: \(error)")
        }
        let reader = YAMLReader(file: file, environment: environment)
        guard let root = node else {
            throw ReindexError.jobFile(file: file, key: "(document)", detail: "the file is empty; expected a mapping with name, primary, output, sources and model")
        }
        let top = try reader.mapping(root, key: "(document)", allowed: ["name", "primary", "output", "index", "sources", "model",
                                                                              "output-mode", "max-row-bytes", "keywords", "compact-above",
                                                                              "full-check-runs", "full-check-hours"])
        let base = URL(fileURLWithPath: file).deletingLastPathComponent().path

        let name = try reader.requiredString(top, "name")
        guard name.range(of: #"^[A-Za-z0-9._-]+$"#, options: .regularExpression) != nil else {
            throw ReindexError.jobFile(file: file, key: "name", detail: "expected letters, digits, '.', '_' or '-' (got \"\(name)\")")
        }
        let primaryValue = try reader.requiredString(top, "primary")
        // A PostgreSQL primary is a libpq URI, kept as written (issue 16).
        let primary = PrimaryLocation.isPostgres(primaryValue) ? primaryValue : absolute(primaryValue, relativeTo: base)
        if PrimaryLocation.display(primary) != primary {
            throw ReindexError.jobFile(file: file, key: "primary", detail: "the URI carries a password (got \(PrimaryLocation.display(primary)) plus a password) — remove it and put the password in PGPASSWORD, ~/.pgpass or a service file; a job file is no place for secrets")
        }
        let output = absolute(try reader.requiredString(top, "output"), relativeTo: base)
        let indexText = try reader.optionalString(top, "index") ?? "auto"
        guard let index = IndexMode(rawValue: indexText) else {
            throw ReindexError.jobFile(file: file, key: "index", detail: "expected one of vec0, none, auto (got \"\(indexText)\")")
        }

        guard let sourcesNode = top["sources"] else {
            throw ReindexError.jobFile(file: file, key: "sources", detail: "missing; expected a list of {name, query}")
        }
        guard let list = sourcesNode.sequence, !list.isEmpty else {
            throw ReindexError.jobFile(file: file, key: "sources", detail: "expected a non-empty list of {name, query}")
        }
        var sources: [Source] = []
        for (i, item) in list.enumerated() {
            let key = "sources[\(i)]"
            let map = try reader.mapping(item, key: key, allowed: ["name", "query", "attributes", "changed-column"])
            let sname = try reader.requiredString(map, "name", prefix: key)
            guard sname.range(of: #"^[A-Za-z0-9._-]+$"#, options: .regularExpression) != nil else {
                throw ReindexError.jobFile(file: file, key: "\(key).name", detail: "expected letters, digits, '.', '_' or '-' (got \"\(sname)\")")
            }
            if sources.contains(where: { $0.name == sname }) {
                throw ReindexError.jobFile(file: file, key: "\(key).name", detail: "duplicate source name (got \"\(sname)\")")
            }
            let query = try reader.requiredString(map, "query", prefix: key)
            let attributes = try map["attributes"].map { try AttributeSpec.parse($0, reader: reader, key: "\(key).attributes") } ?? []
            let changed = try reader.optionalString(map, "changed-column", prefix: key)
            if let changed, changed.isEmpty || changed.contains("\"") || changed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                throw ReindexError.jobFile(file: file, key: "\(key).changed-column", detail: "expected the name of a column of the query, such as updated_at (got \"\(changed)\")")
            }
            sources.append(Source(name: sname, query: query, attributes: attributes, changedColumn: changed))
        }
        try AttributeSpec.checkShared(sources, reader: reader)

        guard let modelNode = top["model"] else {
            throw ReindexError.jobFile(file: file, key: "model", detail: "missing; expected a mapping with provider, url, name, dimensions")
        }
        let model = try ModelConfig.parse(modelNode, reader: reader, base: base)
        var job = JobConfig(file: file, name: name, primary: primary, output: output, index: index, sources: sources, model: model)
        // least privilege for derived files.
        if let text = try reader.optionalString(top, "output-mode") {
            guard let mode = FilePermissions.parseMode(text) else {
                throw ReindexError.jobFile(file: file, key: "output-mode", detail: "expected an octal mode in quotes that lets the owner read and write and nobody else write, such as \"0600\" or \"0640\" (got \"\(text)\")")
            }
            job.outputMode = mode
        }
        job.maxRowBytes = try reader.optionalInt(top, "max-row-bytes", range: 1_024...(1 << 40)) ?? job.maxRowBytes
        job.keywords = try top["keywords"].flatMap { try KeywordSettings.parse($0, reader: reader) }
        job.compactAbove = try reader.optionalDouble(top, "compact-above", range: 0...1) ?? job.compactAbove
        job.fullCheckRuns = try reader.optionalInt(top, "full-check-runs", range: 1...1_000_000) ?? job.fullCheckRuns
        job.fullCheckHours = try reader.optionalDouble(top, "full-check-hours", range: 0...1_000_000) ?? job.fullCheckHours
        return job
    }

    static func absolute(_ path: String, relativeTo base: String) -> String {
        let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : URL(fileURLWithPath: base).appendingPathComponent(path)
        return url.standardizedFileURL.path
    }
}
