import Foundation
import Testing
@testable import ReindexKit

struct VectorNormalizerTests {
    @Test func normalizesToUnitLength() throws {
        var v: [Float] = (0..<384).map { Float($0 % 7) - 3.5 }
        try v.withUnsafeMutableBufferPointer { try VectorNormalizer.normalize($0) }
        let n = v.withUnsafeBufferPointer { BLAS.norm($0) }
        #expect(abs(n - 1) < 1e-6)
    }

    @Test func rejectsZeroAndNonFinite() {
        var zero = [Float](repeating: 0, count: 8)
        #expect(throws: VectorNormalizer.Problem.zero) { try zero.withUnsafeMutableBufferPointer { try VectorNormalizer.normalize($0) } }
        var nan: [Float] = [1, .nan, 2]
        #expect(throws: VectorNormalizer.Problem.nonFinite) { try nan.withUnsafeMutableBufferPointer { try VectorNormalizer.normalize($0) } }
        var inf: [Float] = [1, .infinity]
        #expect(throws: VectorNormalizer.Problem.nonFinite) { try inf.withUnsafeMutableBufferPointer { try VectorNormalizer.normalize($0) } }
    }

    @Test func scoresAreDotProducts() {
        let m: [Float] = [1, 0, 0, 1, 0.6, 0.8]
        let q: [Float] = [0.6, 0.8]
        var s = [Float](repeating: 0, count: 3)
        m.withUnsafeBufferPointer { mp in q.withUnsafeBufferPointer { qp in s.withUnsafeMutableBufferPointer { sp in
            BLAS.scores(matrix: mp, rows: 3, dimensions: 2, query: qp, into: sp)
        } } }
        #expect(abs(s[0] - 0.6) < 1e-6 && abs(s[1] - 0.8) < 1e-6 && abs(s[2] - 1) < 1e-6)
    }
}
