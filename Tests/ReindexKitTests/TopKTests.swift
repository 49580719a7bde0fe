import Foundation
import Testing
@testable import ReindexKit

struct TopKTests {
    @Test func keepsTheBestInOrderWithTiesToTheSmallerID() {
        var top = TopK(k: 3)
        for (id, score) in [(5, 0.1), (2, 0.9), (9, 0.5), (1, 0.5), (7, 0.95), (3, .nan), (4, 0.2)] as [(Int64, Float)] {
            top.offer(score: score, id: id)
        }
        #expect(top.sorted().map(\.id) == [7, 2, 1])
        var none = TopK(k: 0)
        none.offer(score: 1, id: 1)
        #expect(none.sorted().isEmpty)
    }

    /// Blocked sgemv scoring equals a naive ranking, across block boundaries.
    @Test(arguments: [1, 7, 64, 4096])
    func blockedScoringEqualsNaiveRanking(blockRows: Int) {
        let d = 16, n = 300
        var rng = SystemRandomNumberGenerator()
        let vectors: [[Float]] = (0..<n).map { _ in (0..<d).map { _ in Float.random(in: -1...1, using: &rng) } }
        let query: [Float] = (0..<d).map { _ in Float.random(in: -1...1, using: &rng) }
        var next = 0
        let got = ExactRanker.topK(query: query, k: 10, blockRows: blockRows) { matrix, ids in
            var rows = 0
            while rows < blockRows, next < n {
                for j in 0..<d { matrix[rows * d + j] = vectors[next][j] }
                ids.append(Int64(next))
                rows += 1
                next += 1
            }
            return rows
        }
        let naive = (0..<n).map { i in (Int64(i), zip(vectors[i], query).reduce(Float(0)) { $0 + $1.0 * $1.1 }) }
            .sorted { $0.1 > $1.1 }.prefix(10)
        #expect(got.map(\.id) == naive.map(\.0))
        for (a, b) in zip(got, naive) { #expect(abs(a.score - b.1) < 1e-4) }
    }
}
