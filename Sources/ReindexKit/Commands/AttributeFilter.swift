import Foundation
import GRDB

/// `reindex search --where NAME OP VALUE` (repeatable, all must hold) and
/// `--or-null NAME`: the scope of an exact search, as SQL on `items`.
/// `=` for partition keys; `=`, `!=`, `<`, `<=`, `>`, `>=` for filters;
/// `stored` attributes are not a scope. A condition never matches NULL (a
/// row that belongs to every room is not "in room R"); `--or-null room`
/// adds the rows whose room is NULL, explicitly.
public struct AttributeFilter: Sendable, Equatable {
    public var name: String
    public var op: String
    public var value: String

    static let operators = ["<=", ">=", "!=", "=", "<", ">"]

    /// Parses `room=R`, `created>=1700000000` (the first operator after the name).
    public static func parse(_ text: String) throws -> AttributeFilter {
        guard let nameEnd = text.firstIndex(where: { "=<>!".contains($0) }) else {
            throw ReindexError.usage("--where \(text): expected NAME=VALUE or NAME OP VALUE with OP one of \(operators.joined(separator: " ")) (got no operator) — e.g. --where room=R")
        }
        let name = String(text[..<nameEnd]).trimmingCharacters(in: .whitespaces)
        let rest = text[nameEnd...]
        guard let op = operators.first(where: { rest.hasPrefix($0) }), !name.isEmpty else {
            throw ReindexError.usage("--where \(text): expected NAME OP VALUE with OP one of \(operators.joined(separator: " ")) (got \"\(text)\") — e.g. --where room=R")
        }
        return AttributeFilter(name: name, op: op, value: String(rest.dropFirst(op.count)))
    }

    /// The WHERE clause on `items` and its arguments; refuses (exit 64) a
    /// name the file does not store, an operator the role does not take, a
    /// value that is not of the attribute's type.
    static func sql(_ filters: [AttributeFilter], orNull: [String], columns: [AttributeColumn]) throws -> (String, StatementArguments) {
        let known = columns.map(\.name).joined(separator: ", ")
        func column(_ name: String, _ flag: String) throws -> AttributeColumn {
            guard let c = columns.first(where: { $0.name == name }) else {
                throw ReindexError.usage("\(flag) \(name): the vector file has no such attribute (got \"\(name)\", expected one of: \(known.isEmpty ? "none — the job declares no attributes" : known))")
            }
            return c
        }
        var clauses: [String: [String]] = [:]
        var order: [String] = []
        var arguments: [DatabaseValueConvertible?] = []
        for f in filters {
            let c = try column(f.name, "--where")
            switch c.role {
            case .stored:
                throw ReindexError.usage("--where \(f.name)\(f.op)\(f.value): \(f.name) is a stored attribute, not indexed (got role stored) — scope by a partition or filter attribute, or declare it `filter` in the job")
            case .partition where f.op != "=":
                throw ReindexError.usage("--where \(f.name)\(f.op)\(f.value): \(f.name) is a partition key, which takes only = (got \(f.op)) — declare it `filter` to compare it otherwise")
            default: break
            }
            let value: DatabaseValueConvertible
            switch c.type {
            case .text: value = f.value
            case .integer:
                guard let n = Int64(f.value) else {
                    throw ReindexError.usage("--where \(f.name)\(f.op)\(f.value): \(f.name) is an integer attribute (got \"\(f.value)\") — pass an integer")
                }
                value = n
            case .real:
                guard let x = Double(f.value), x.isFinite else {
                    throw ReindexError.usage("--where \(f.name)\(f.op)\(f.value): \(f.name) is a real attribute (got \"\(f.value)\") — pass a number")
                }
                value = x
            }
            if clauses[c.name] == nil { order.append(c.name) }
            clauses[c.name, default: []].append("\(c.name) \(f.op) ?")
            arguments.append(value)
        }
        for name in orNull {
            _ = try column(name, "--or-null")
            guard clauses[name] != nil else {
                throw ReindexError.usage("--or-null \(name): there is no --where on \(name) to widen (got --or-null without it) — add e.g. --where \(name)=VALUE")
            }
        }
        // Arguments follow the clauses' order: build them per attribute, in the order first seen.
        var ordered: [DatabaseValueConvertible?] = []
        var parts: [String] = []
        var next = 0
        var byName: [String: [DatabaseValueConvertible?]] = [:]
        for f in filters {
            byName[f.name, default: []].append(arguments[next])
            next += 1
        }
        for name in order {
            let all = clauses[name]!.joined(separator: " AND ")
            parts.append(orNull.contains(name) ? "((\(all)) OR \(name) IS NULL)" : "(\(all))")
            ordered += byName[name]!
        }
        return (parts.joined(separator: " AND "), StatementArguments(ordered))
    }
}
