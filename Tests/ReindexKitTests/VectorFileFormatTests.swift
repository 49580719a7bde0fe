import Foundation
import Testing
@testable import ReindexKit

/// docs/format.md is the public contract: its schema block and its meta-key
/// table must say exactly what the code writes.
struct VectorFileFormatTests {
    static let document: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return (try? String(contentsOf: root.appendingPathComponent("docs/format.md"), encoding: .utf8)) ?? ""
    }()

    static func between(_ begin: String, _ end: String) -> String? {
        guard let a = document.range(of: begin), let b = document.range(of: end, range: a.upperBound..<document.endIndex) else { return nil }
        return String(document[a.upperBound..<b.lowerBound])
    }

    static func normalized(_ sql: String) -> [String] {
        sql.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("```") }
    }

    @Test func theDocumentedSchemaIsTheCodesSchema() throws {
        let block = try #require(Self.between("<!-- schema:begin -->", "<!-- schema:end -->"), "docs/format.md has no schema block")
        #expect(Self.normalized(block) == Self.normalized(VectorFileFormat.schema))
    }

    /// Issue 14: the documented example of a job with attributes is what the code creates for it.
    @Test func theDocumentedAttributeSchemaIsTheCodes() throws {
        let block = try #require(Self.between("<!-- schema-attributes:begin -->", "<!-- schema-attributes:end -->"), "docs/format.md has no attribute schema block")
        let specs = [AttributeSpec(name: "author", role: .stored), AttributeSpec(name: "created", role: .filter), AttributeSpec(name: "room", role: .partition)]
        let columns = [AttributeColumn(name: "author", role: .stored, type: .text), AttributeColumn(name: "created", role: .filter, type: .integer),
                       AttributeColumn(name: "room", role: .partition, type: .text)]
        let items = VectorFileFormat.schema(attributes: specs).components(separatedBy: "CREATE TABLE IF NOT EXISTS failures")[0]
            .components(separatedBy: "CREATE TABLE IF NOT EXISTS items")[1]
        let code = "CREATE TABLE IF NOT EXISTS items" + items + VecIndex.createSQL(dimensions: 384, attributes: columns, chunkSize: 128)
        #expect(Self.normalized(block) == Self.normalized(code))
    }

    @Test func everyMetaKeyIsDocumentedAndNothingElse() throws {
        let table = try #require(Self.between("<!-- meta-keys:begin -->", "<!-- meta-keys:end -->"), "docs/format.md has no meta-key table")
        let documented = table.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("| `"), let end = line.dropFirst(3).firstIndex(of: "`") else { return nil }
            return String(line[line.index(line.startIndex, offsetBy: 3)..<end])
        }
        #expect(Set(documented) == Set(MetaKey.allCases.map(\.rawValue)))
        #expect(documented.count == MetaKey.allCases.count, "a key is documented twice")
    }

    @Test func theDocumentNamesTheVersion() {
        #expect(Self.document.contains(VectorFileFormat.version))
    }
}
