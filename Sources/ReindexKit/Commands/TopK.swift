/// The k best-scoring ids of a stream, in O(n log k) time and O(k) memory:
/// a binary min-heap whose root is the worst of the kept ones. Ties go to
/// the smaller id, so rankings are deterministic.
public struct TopK: Sendable {
    public let k: Int
    private var heap: [(score: Float, id: Int64)] = []

    public init(k: Int) {
        self.k = max(0, k)
        heap.reserveCapacity(self.k)
    }

    /// Whether `a` ranks below `b`.
    static func worse(_ a: (score: Float, id: Int64), _ b: (score: Float, id: Int64)) -> Bool {
        a.score < b.score || (a.score == b.score && a.id > b.id)
    }

    public mutating func offer(score: Float, id: Int64) {
        guard k > 0, !score.isNaN else { return }
        let entry = (score: score, id: id)
        if heap.count < k {
            heap.append(entry)
            var i = heap.count - 1
            while i > 0 {
                let parent = (i - 1) / 2
                guard Self.worse(heap[i], heap[parent]) else { break }
                heap.swapAt(i, parent)
                i = parent
            }
        } else if Self.worse(heap[0], entry) {
            heap[0] = entry
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count, Self.worse(heap[l], heap[m]) { m = l }
                if r < heap.count, Self.worse(heap[r], heap[m]) { m = r }
                guard m != i else { break }
                heap.swapAt(i, m)
                i = m
            }
        }
    }

    /// Best first.
    public func sorted() -> [(id: Int64, score: Float)] {
        heap.sorted { Self.worse($1, $0) }.map { (id: $0.id, score: $0.score) }
    }
}
