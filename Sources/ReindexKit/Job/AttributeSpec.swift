import Foundation
import Yams

/// One attribute a source declares: a column of its query, besides `id` and
/// `text`, stored with every chunk of the row and in `vec_items` by role
/// (docs/format.md, "Attributes"):
///
///     attributes: {room: partition, created: filter, author: stored}
///     attributes: {room: {role: partition, type: text}}
///
/// The type is SQLite's (integer, real, text); without `type` it is taken
/// from the data (`AttributeColumn`), with it the scan casts the column.
public struct AttributeSpec: Sendable, Equatable {
    public enum Role: String, Sendable, Equatable, CaseIterable {
        /// A vec0 partition key: a KNN query is scoped to one value (or a few, with IN).
        case partition
        /// A vec0 metadata column: usable in a KNN query's WHERE.
        case filter
        /// A vec0 auxiliary column: kept and returned, not indexed.
        case stored
    }

    public enum ValueType: String, Sendable, Equatable, CaseIterable {
        case integer, real, text
    }

    public var name: String
    public var role: Role
    /// Declared in the job; nil: from the data.
    public var type: ValueType?

    public init(name: String, role: Role, type: ValueType? = nil) {
        self.name = name
        self.role = role
        self.type = type
    }

    /// sqlite-vec 0.1.9's limits per `vec0` table.
    public static let limits: [Role: Int] = [.partition: 4, .filter: 16, .stored: 16]

    /// Names an attribute cannot take: the columns of `items` and of the
    /// staged rows, the source query's own, and `vec0`'s and FTS5's hidden columns.
    static let reservedNames: Set<String> = [
        "id", "source", "source_id", "chunk", "span_start", "span_end", "row_hash", "content_hash", "embedding", "embedded_at",
        "text", "hash", "input", "truncated", "rowid", "oid", "_rowid_", "distance", "k", "chunk_size",
        // FTS5's hidden columns of `keywords`, joined with `items` in keyword searches.
        "rank", "keywords",
    ]

    /// SQLite 3.40's keywords (`sqlite3_keyword_name`): vec0 declares its
    /// columns unquoted, so an attribute name must not be one.
    static let sqliteKeywords: Set<String> = Set("""
        ABORT ACTION ADD AFTER ALL ALTER ALWAYS ANALYZE AND AS ASC ATTACH AUTOINCREMENT BEFORE BEGIN BETWEEN BY CASCADE CASE CAST \
        CHECK COLLATE COLUMN COMMIT CONFLICT CONSTRAINT CREATE CROSS CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP DATABASE \
        DEFAULT DEFERRABLE DEFERRED DELETE DESC DETACH DISTINCT DO DROP EACH ELSE END ESCAPE EXCEPT EXCLUDE EXCLUSIVE EXISTS EXPLAIN \
        FAIL FILTER FIRST FOLLOWING FOR FOREIGN FROM FULL GENERATED GLOB GROUP GROUPS HAVING IF IGNORE IMMEDIATE IN INDEX INDEXED \
        INITIALLY INNER INSERT INSTEAD INTERSECT INTO IS ISNULL JOIN KEY LAST LEFT LIKE LIMIT MATCH MATERIALIZED NATURAL NO NOT \
        NOTHING NOTNULL NULL NULLS OF OFFSET ON OR ORDER OTHERS OUTER OVER PARTITION PLAN PRAGMA PRECEDING PRIMARY QUERY RAISE RANGE \
        RECURSIVE REFERENCES REGEXP REINDEX RELEASE RENAME REPLACE RESTRICT RETURNING RIGHT ROLLBACK ROW ROWS SAVEPOINT SELECT SET \
        TABLE TEMP TEMPORARY THEN TIES TO TRANSACTION TRIGGER UNBOUNDED UNION UNIQUE UPDATE USING VACUUM VALUES VIEW VIRTUAL WHEN \
        WHERE WINDOW WITH WITHOUT
        """.split(whereSeparator: \.isWhitespace).map(String.init))

    /// Parses a source's `attributes:` mapping; the result is sorted by name,
    /// so two sources that declare the same set compare equal.
    static func parse(_ node: Node, reader: YAMLReader, key: String) throws -> [AttributeSpec] {
        let roles = Role.allCases.map(\.rawValue).joined(separator: ", ")
        guard let map = node.mapping else {
            throw reader.fail(key, "expected a mapping of column name to role (\(roles)), e.g. {room: partition} (got \(reader.describe(node)))")
        }
        var specs: [AttributeSpec] = []
        for (k, value) in map {
            guard let name = k.string else { throw reader.fail(key, "keys must be column names (got \(reader.describe(k)))") }
            let where_ = "\(key).\(name)"
            guard name.range(of: #"^[A-Za-z_][A-Za-z0-9_]{0,62}$"#, options: .regularExpression) != nil else {
                throw reader.fail(where_, "expected a column name of letters, digits and '_' not starting with a digit (got \"\(name)\") — alias the column in the query, e.g. `\"roomId\" AS room`")
            }
            if reservedNames.contains(name.lowercased()) || sqliteKeywords.contains(name.uppercased()) {
                throw reader.fail(where_, "the name collides with a column reindex or vec0 uses itself or with an SQL keyword (got \"\(name)\"; not allowed: \(reservedNames.sorted().joined(separator: ", ")) and SQLite's keywords) — alias the column in the query, e.g. `\"\(name)\" AS \(name)_value`")
            }
            if specs.contains(where: { $0.name.lowercased() == name.lowercased() }) {
                throw reader.fail(where_, "declared twice (names are case-insensitive in SQL) (got \"\(name)\")")
            }
            var spec: AttributeSpec
            if case .scalar(let s) = value {
                guard let role = Role(rawValue: s.string) else {
                    throw reader.fail(where_, "unknown role; expected one of \(roles) (got \"\(s.string)\")")
                }
                spec = AttributeSpec(name: name, role: role)
            } else {
                let inner = try reader.mapping(value, key: where_, allowed: ["role", "type"])
                let roleText = try reader.requiredString(inner, "role", prefix: where_)
                guard let role = Role(rawValue: roleText) else {
                    throw reader.fail("\(where_).role", "unknown role; expected one of \(roles) (got \"\(roleText)\")")
                }
                spec = AttributeSpec(name: name, role: role)
                if let typeText = try reader.optionalString(inner, "type", prefix: where_) {
                    guard let type = ValueType(rawValue: typeText) else {
                        throw reader.fail("\(where_).type", "unknown type; expected one of \(ValueType.allCases.map(\.rawValue).joined(separator: ", ")) (got \"\(typeText)\")")
                    }
                    if role == .partition && type == .real {
                        throw reader.fail("\(where_).type", "a partition key is an integer or a text in vec0 (got real) — declare it `filter`, or make it an integer or text")
                    }
                    spec.type = type
                }
            }
            specs.append(spec)
        }
        for role in Role.allCases {
            let n = specs.filter { $0.role == role }.count
            if let limit = limits[role], n > limit {
                throw reader.fail(key, "more \(role.rawValue) attributes than vec0 allows (got \(n), at most \(limit)) — declare fewer, or make some `stored`")
            }
        }
        return specs.sorted { $0.name < $1.name }
    }

    /// Every source shares one `vec_items`, so every source declares the
    /// same attributes (names, roles, types), a NULL column where a source
    /// has no value (`NULL AS room`).
    static func checkShared(_ sources: [JobConfig.Source], reader: YAMLReader) throws {
        guard let first = sources.first else { return }
        for (i, source) in sources.enumerated().dropFirst() where source.attributes != first.attributes {
            throw reader.fail("sources[\(i)].attributes", "every source must declare the same attributes, as they share one index (got \(describe(source.attributes)) in \"\(source.name)\", expected \(describe(first.attributes)) as in \"\(first.name)\") — declare the missing ones too, with `NULL AS name` in the query where the source has no value")
        }
    }

    static func describe(_ specs: [AttributeSpec]) -> String {
        specs.isEmpty ? "none" : "{" + specs.map { "\($0.name): \($0.role.rawValue)\($0.type.map { "/\($0.rawValue)" } ?? "")" }.joined(separator: ", ") + "}"
    }
}
