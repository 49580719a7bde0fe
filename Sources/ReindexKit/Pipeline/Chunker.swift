import Foundation

// TEMPORARY stand-in with the agreed interface; replaced by the chunker branch at merge.
public struct Chunk: Sendable, Equatable {
    public var start: Int
    public var end: Int
    public init(start: Int, end: Int) { self.start = start; self.end = end }
}

public struct Chunker: Sendable, Equatable {
    public var size: Int
    public var overlap: Int
    public init(size: Int, overlap: Int) { self.size = size; self.overlap = overlap }
    public static let minimumSplit = 64

    public func chunks(_ text: String) -> [Chunk] {
        let n = text.unicodeScalars.count
        guard n > size else { return [Chunk(start: 0, end: n)] }
        var out: [Chunk] = []
        var start = 0
        while true {
            let end = min(n, start + size)
            out.append(Chunk(start: start, end: end))
            if end == n { break }
            start = end - overlap
        }
        return out
    }

    public func split(_ chunk: Chunk, of text: String) -> (Chunk, Chunk)? {
        guard chunk.end - chunk.start >= Self.minimumSplit else { return nil }
        let mid = (chunk.start + chunk.end) / 2
        return (Chunk(start: chunk.start, end: mid), Chunk(start: mid, end: chunk.end))
    }
}
