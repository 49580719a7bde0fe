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
