import Foundation

/// An embedded chunk on its way to the vector file: the vector is already
/// L2-normalized little-endian float32, the layout sqlite-vec reads.
public struct EmbeddedItem: Sendable {
    public var source: String
    public var sourceID: String
    public var chunk: Int
    public var spanStart: Int
    public var spanEnd: Int
    public var rowHash: Data
    public var hash: Data
    public var embedding: Data
}
