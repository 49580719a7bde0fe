import Foundation
import Testing
@testable import ReindexKit

/// Issue 17: the keyword query quoting and the reciprocal-rank fusion.
@Suite struct HybridSearchTests {
    @Test(arguments: [
        ("SQLITE_CORRUPT now", #""SQLITE_CORRUPT" OR "now""#),
        (#"say "hi" NEAR(x, 2)"#, #""say" OR """hi""" OR "NEAR(x," OR "2)""#),
        ("a*  -b\tOR", #""a*" OR "-b" OR "OR""#),
        ("café 東京", #""café" OR "東京""#),
    ])
    func everyTermIsQuoted(text: String, match: String) {
        #expect(KeywordQuery.match(text) == match)
    }

    @Test func eachTermOnceForTheIDFCoverage() {
        let q = KeywordQuery("the cabin the Cabin \"x\"")
        #expect(q?.terms == [#""the""#, #""cabin""#, #""Cabin""#, #""""x""""#])
        #expect(q?.termsJSON == #"["\"the\"","\"cabin\"","\"Cabin\"","\"\"\"x\"\"\""]"#)
    }

    @Test func punctuationAloneHasNoKeywordQuery() {
        #expect(KeywordQuery.match(#"" * - ( ) ^ :"#) == nil)
        #expect(KeywordQuery.match("   ") == nil)
    }

    static func key(_ id: String, chunk: Int = 0) -> LiveFileReader.Key {
        LiveFileReader.Key(source: "s", sourceID: id, chunk: chunk, start: 0, end: 1)
    }

    static func ranked(_ ids: [String], chunk: Int = 0) -> [HybridFusion.Ranked] {
        ids.enumerated().map { HybridFusion.Ranked(key: key($1, chunk: chunk), score: Double(10 - $0), values: []) }
    }

    @Test func aRowBothSidesFindBeatsTheTopOfOneSide() {
        let fused = HybridFusion().fuse(vector: Self.ranked(["a", "b", "c"]), keyword: Self.ranked(["x", "c"]), limit: 10)
        #expect(fused.map(\.key.sourceID) == ["c", "a", "x", "b"])
        let c = fused[0]
        #expect(abs(c.score - (1.0 / 63 + 1.0 / 62)) < 1e-12)
        #expect(c.vector?.rank == 3 && c.keyword?.rank == 2)
        // Ties (a and x are both first on one side) in (source, id) order; b has only the vector side.
        #expect(fused[1].score == fused[2].score && fused[3].keyword == nil)
    }

    @Test func weightsAndTheConstantShapeTheFusion() {
        let keywordOnly = HybridFusion(vectorWeight: 0).fuse(vector: Self.ranked(["a", "b"]), keyword: Self.ranked(["b", "a"]), limit: 2)
        #expect(keywordOnly.map(\.key.sourceID) == ["b", "a"])
        let sharp = HybridFusion(k: 0).fuse(vector: Self.ranked(["a", "b"]), keyword: [], limit: 1)
        #expect(sharp.first?.score == 1)
        #expect(HybridFusion.depth(for: 10) == 50 && HybridFusion.depth(for: 100) == 200)
    }

    @Test func theRowShowsTheChunkOfTheSideThatRankedItHigher() {
        let vector = [HybridFusion.Ranked(key: Self.key("a", chunk: 3), score: 0.5, values: [])]
        let keyword = [HybridFusion.Ranked(key: Self.key("z"), score: 9, values: []), HybridFusion.Ranked(key: Self.key("a", chunk: 7), score: 5, values: [])]
        #expect(HybridFusion().fuse(vector: vector, keyword: keyword, limit: 2).first { $0.key.sourceID == "a" }?.key.chunk == 3)
        let earlier = [HybridFusion.Ranked(key: Self.key("a", chunk: 7), score: 9, values: [])]
        let later = [HybridFusion.Ranked(key: Self.key("y"), score: 1, values: []), HybridFusion.Ranked(key: Self.key("a", chunk: 3), score: 0.5, values: [])]
        #expect(HybridFusion().fuse(vector: later, keyword: earlier, limit: 2).first { $0.key.sourceID == "a" }?.key.chunk == 7)
    }
}
