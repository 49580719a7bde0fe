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
    }

    public var file: String
    public var name: String
    public var primary: String
    public var output: String
    public var index: IndexMode
    public var sources: [Source]
    public var model: ModelConfig

    /// Command-line overrides applied after parsing (`--primary`, `--output`, `--model-url`).
    public mutating func apply(primary: String?, output: String?, modelURL: String?) {
        let cwd = FileManager.default.currentDirectoryPath
        if let primary { self.primary = JobConfig.absolute(primary, relativeTo: cwd) }
        if let output { self.output = JobConfig.absolute(output, relativeTo: cwd) }
        if let modelURL { self.model.url = modelURL }
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
        return try parse(yaml: text, file: url.standardizedFileURL.path, environment: environment)
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
        let top = try reader.mapping(root, key: "(document)", allowed: ["name", "primary", "output", "index", "sources", "model"])
        let base = URL(fileURLWithPath: file).deletingLastPathComponent().path

        let name = try reader.requiredString(top, "name")
        guard name.range(of: #"^[A-Za-z0-9._-]+$"#, options: .regularExpression) != nil else {
            throw ReindexError.jobFile(file: file, key: "name", detail: "expected letters, digits, '.', '_' or '-' (got \"\(name)\")")
        }
        let primary = absolute(try reader.requiredString(top, "primary"), relativeTo: base)
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
            let map = try reader.mapping(item, key: key, allowed: ["name", "query"])
            let sname = try reader.requiredString(map, "name", prefix: key)
            guard sname.range(of: #"^[A-Za-z0-9._-]+$"#, options: .regularExpression) != nil else {
                throw ReindexError.jobFile(file: file, key: "\(key).name", detail: "expected letters, digits, '.', '_' or '-' (got \"\(sname)\")")
            }
            if sources.contains(where: { $0.name == sname }) {
                throw ReindexError.jobFile(file: file, key: "\(key).name", detail: "duplicate source name (got \"\(sname)\")")
            }
            let query = try reader.requiredString(map, "query", prefix: key)
            sources.append(Source(name: sname, query: query))
        }

        guard let modelNode = top["model"] else {
            throw ReindexError.jobFile(file: file, key: "model", detail: "missing; expected a mapping with provider, url, name, dimensions")
        }
        let model = try ModelConfig.parse(modelNode, reader: reader, base: base)
        return JobConfig(file: file, name: name, primary: primary, output: output, index: index, sources: sources, model: model)
    }

    static func absolute(_ path: String, relativeTo base: String) -> String {
        let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : URL(fileURLWithPath: base).appendingPathComponent(path)
        return url.standardizedFileURL.path
    }
}

/// Typed access to YAML nodes with job-file error messages (`file: key: expected X (got Y)`).
struct YAMLReader {
    let file: String
    let environment: [String: String]

    func fail(_ key: String, _ detail: String) -> ReindexError {
        .jobFile(file: file, key: key, detail: detail)
    }

    func mapping(_ node: Node, key: String, allowed: Set<String>) throws -> Node.Mapping {
        guard let map = node.mapping else {
            throw fail(key, "expected a mapping (got \(describe(node)))")
        }
        for (k, _) in map {
            guard let name = k.string else { throw fail(key, "keys must be strings (got \(describe(k)))") }
            if !allowed.contains(name) {
                let where_ = key == "(document)" ? name : "\(key).\(name)"
                throw fail(where_, "unknown key; expected one of \(allowed.sorted().joined(separator: ", "))")
            }
        }
        return map
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let s): return "\"\(s.string)\""
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    private func qualified(_ key: String, _ prefix: String?) -> String {
        prefix.map { "\($0).\(key)" } ?? key
    }

    /// Expands `${VAR}` from the environment; an unset variable is an error, not "".
    func expand(_ value: String, key: String) throws -> String {
        guard value.contains("${") else { return value }
        var out = ""
        var rest = Substring(value)
        while let start = rest.range(of: "${") {
            out += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw fail(key, "unterminated ${ in \"\(value)\"")
            }
            let name = String(rest[start.upperBound..<end])
            guard let v = environment[name] else {
                throw fail(key, "environment variable \(name) is not set (used as ${\(name)})")
            }
            out += v
            rest = rest[rest.index(after: end)...]
        }
        out += rest
        return out
    }

    func optionalString(_ map: Node.Mapping, _ key: String, prefix: String? = nil) throws -> String? {
        guard let node = map[key] else { return nil }
        guard case .scalar(let s) = node else {
            throw fail(qualified(key, prefix), "expected a string (got \(describe(node)))")
        }
        if node.null != nil && s.style == .plain { return nil }
        return try expand(s.string, key: qualified(key, prefix))
    }

    func requiredString(_ map: Node.Mapping, _ key: String, prefix: String? = nil) throws -> String {
        guard let value = try optionalString(map, key, prefix: prefix) else {
            throw fail(qualified(key, prefix), "missing; expected a string")
        }
        if value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw fail(qualified(key, prefix), "expected a non-empty string")
        }
        return value
    }

    func optionalInt(_ map: Node.Mapping, _ key: String, prefix: String? = nil, range: ClosedRange<Int>) throws -> Int? {
        guard let node = map[key] else { return nil }
        guard case .scalar = node, let raw = node.string else {
            throw fail(qualified(key, prefix), "expected an integer (got \(describe(node)))")
        }
        guard let value = Int(try expand(raw, key: qualified(key, prefix))) else {
            throw fail(qualified(key, prefix), "expected an integer from \(range.lowerBound) to \(range.upperBound) (got \"\(raw)\")")
        }
        guard range.contains(value) else {
            throw fail(qualified(key, prefix), "expected an integer from \(range.lowerBound) to \(range.upperBound) (got \(value))")
        }
        return value
    }

    func optionalDouble(_ map: Node.Mapping, _ key: String, prefix: String? = nil, range: ClosedRange<Double>) throws -> Double? {
        guard let node = map[key] else { return nil }
        guard case .scalar = node, let raw = node.string, let value = Double(try expand(raw, key: qualified(key, prefix))) else {
            throw fail(qualified(key, prefix), "expected a number (got \(describe(node)))")
        }
        guard range.contains(value) else {
            throw fail(qualified(key, prefix), "expected a number from \(range.lowerBound) to \(range.upperBound) (got \(value))")
        }
        return value
    }

    func optionalBool(_ map: Node.Mapping, _ key: String, prefix: String? = nil) throws -> Bool? {
        guard let node = map[key] else { return nil }
        guard case .scalar = node, let value = node.bool else {
            throw fail(qualified(key, prefix), "expected true or false (got \(describe(node)))")
        }
        return value
    }

    func optionalStringList(_ map: Node.Mapping, _ key: String, prefix: String? = nil) throws -> [String]? {
        guard let node = map[key] else { return nil }
        guard let seq = node.sequence else {
            throw fail(qualified(key, prefix), "expected a list of strings (got \(describe(node)))")
        }
        return try seq.enumerated().map { i, item in
            guard case .scalar(let s) = item else {
                throw fail("\(qualified(key, prefix))[\(i)]", "expected a string (got \(describe(item)))")
            }
            return try expand(s.string, key: qualified(key, prefix))
        }
    }
}
