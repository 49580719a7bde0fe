import Foundation

/// A compaction of `vec_items` on the clone path: when it happened (the run
/// that reports it) and what it cost (summary key `compaction`).
public struct CompactionSummary: Sendable, Encodable, Equatable {
    /// `vec_items` rows deleted since it was built: dead slots, reclaimed.
    public var deadRows: Int
    /// Their share of all the slots, which passed `compact-above`.
    public var deadFraction: Double
    /// Wall time of the rebuild.
    public var seconds: Double

    enum CodingKeys: String, CodingKey {
        case deadRows = "dead_rows", deadFraction = "dead_fraction", seconds
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(deadRows, forKey: .deadRows)
        try c.encode((deadFraction * 1000).rounded() / 1000, forKey: .deadFraction)
        try c.encode((seconds * 1000).rounded() / 1000, forKey: .seconds)
    }

    var text: String { String(format: "compacted vec_items: %d dead rows (%.0f%% of its slots) reclaimed by a rebuild in %.2f s", deadRows, deadFraction * 100, seconds) }
}
