import Foundation
import Yams

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
