import Foundation
import GRDB

/// An attribute as the vector file stores it (docs/format.md, "Attributes"):
/// its name, role and SQLite type, the column of that name in `items`
/// (declared without a type, every value as the query returned it, NULL
/// included) and in `vec_items` by role — a partition key, a metadata column
/// or an auxiliary column — and listed in `meta.attributes`. Defined once
/// here: the staging column, the `vec0` declaration, the NULL stand-in.
public struct AttributeColumn: Sendable, Equatable {
    public var name: String
    public var role: AttributeSpec.Role
    public var type: AttributeSpec.ValueType

    public init(name: String, role: AttributeSpec.Role, type: AttributeSpec.ValueType) {
        self.name = name
        self.role = role
        self.type = type
    }

    /// `vec0` has no NULL in partition keys (not served by the index) or
    /// metadata columns (refused): NULL is stored there as this value, the
    /// same for every file. Auxiliary (`stored`) columns keep NULL.
    public var vecNull: String? {
        guard role != .stored else { return nil }
        switch type {
        case .text: return "''"
        case .integer: return "-9223372036854775808"
        case .real: return "-9e999"  // -inf
        }
    }

    /// vec0's type keyword (`float`, not `real`).
    var vecType: String {
        switch type {
        case .integer: return "integer"
        case .real: return "float"
        case .text: return "text"
        }
    }

    /// The column's declaration in `CREATE VIRTUAL TABLE vec_items USING vec0(…)`.
    var vecDeclaration: String {
        switch role {
        case .partition: return "\(name) \(vecType) partition key"
        case .filter: return "\(name) \(vecType)"
        case .stored: return "+\(name) \(vecType)"
        }
    }

    /// The value `vec_items` gets from `items.<name>` (aliased `i`): cast to
    /// the type, NULL replaced by `vecNull`.
    var vecValue: String {
        let cast = "CAST(i.\(name) AS \(type.rawValue.uppercased()))"
        return vecNull.map { "coalesce(\(cast), \($0))" } ?? cast
    }

    /// `meta.attributes`: `{"attributes": [{"name", "role", "type", "vec_null"}, …]}`, sorted by name.
    public static func encode(_ columns: [AttributeColumn]) -> String {
        let list: [[String: Any]] = columns.map { c in
            var entry: [String: Any] = ["name": c.name, "role": c.role.rawValue, "type": c.type.rawValue]
            switch (c.role, c.type) {
            case (.stored, _): entry["vec_null"] = NSNull()
            case (_, .text): entry["vec_null"] = ""
            case (_, .integer): entry["vec_null"] = Int64.min
            case (_, .real): entry["vec_null"] = "-inf"
            }
            return entry
        }
        guard let data = try? JSONSerialization.data(withJSONObject: ["attributes": list], options: [.sortedKeys, .withoutEscapingSlashes]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Reads `meta.attributes`; a file without the key has none.
    public static func decode(_ text: String?) -> [AttributeColumn]? {
        guard let text else { return [] }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let list = object["attributes"] as? [[String: Any]] else { return nil }
        var out: [AttributeColumn] = []
        for entry in list {
            guard let name = entry["name"] as? String, let role = (entry["role"] as? String).flatMap(AttributeSpec.Role.init),
                  let type = (entry["type"] as? String).flatMap(AttributeSpec.ValueType.init) else { return nil }
            out.append(AttributeColumn(name: name, role: role, type: type))
        }
        return out
    }

    /// The attributes' types, from the staged values: a declared type as
    /// declared (the scan cast it); otherwise integer when every non-NULL
    /// value is an integer, real when they are numbers, text when they are
    /// text (or when every value is NULL). Values of several kinds, or
    /// blobs, are refused (exit 64): the query must make them one type.
    ///
    /// `base` (the live file's columns) stands for the rows a
    /// `changed-column` scan did not stage: its type joins the staged kinds.
    static func resolve(_ specs: [AttributeSpec], _ db: Database, base: [AttributeColumn]? = nil) throws -> [AttributeColumn] {
        try specs.map { spec in
            var kinds = try Row.fetchAll(db, sql: """
                SELECT typeof(\(StagingArea.column(spec.name))) AS kind, min(source) AS source FROM scan.rows WHERE \(StagingArea.column(spec.name)) IS NOT NULL GROUP BY 1
                """).map { (kind: $0[0] as String, source: $0[1] as String) }
            if let old = base?.first(where: { $0.name == spec.name }), !kinds.contains(where: { $0.kind == old.type.rawValue }) {
                kinds.append((old.type.rawValue, "the live file"))
            }
            let set = Set(kinds.map(\.kind))
            let type: AttributeSpec.ValueType
            if let declared = spec.type {
                type = declared
            } else if set.isEmpty || set == ["text"] {
                type = .text
            } else if set == ["integer"] {
                type = .integer
            } else if set.isSubset(of: ["integer", "real"]) {
                type = .real
            } else {
                let got = kinds.map { "\($0.kind) in \"\($0.source)\"" }.joined(separator: ", ")
                throw ReindexError.sourceQuery(source: kinds.first?.source ?? "?", detail: "attributes.\(spec.name): values of several types or blobs (got \(got)); expected one of integer, real, text — CAST the column in the query, or declare the type: `\(spec.name): {role: \(spec.role.rawValue), type: text}`")
            }
            if spec.role == .partition && type == .real {
                throw ReindexError.sourceQuery(source: kinds.first?.source ?? "?", detail: "attributes.\(spec.name): a partition key is an integer or a text in vec0 (got real values) — declare it `filter`, or CAST it in the query")
            }
            return AttributeColumn(name: spec.name, role: spec.role, type: type)
        }
    }
}
