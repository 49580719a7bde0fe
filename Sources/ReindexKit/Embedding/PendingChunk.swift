import Foundation

/// One input on its way to the model: a chunk of a source row (or a drift
/// probe, or a search query), with everything its item needs.
public struct PendingChunk: Sendable {
    public var source: String
    public var sourceID: String
    /// Position in the row; the pieces of a chunk the server found too long get
    /// `Self.splitBase`-based numbers until the file is verified (see `WorkFile.renumberSplitChunks`).
    public var chunk: Int
    /// The chunk's span in the row's text, in Unicode scalars, end exclusive.
    public var start: Int
    public var end: Int
    /// SHA-256 of the row's whole model input.
    public var rowHash: Data
    /// SHA-256 of `input`.
    public var hash: Data
    /// Exactly `prefix` + the row's text from `start` to `end`.
    public var input: String
    /// Scalars of `input` that are the prefix.
    public var prefixLength: Int

    /// Chunk numbers of split pieces start here: above any real chunk count.
    public static let splitBase = 1_000_000

    /// An input that is not part of a row (probe, query).
    public init(source: String, sourceID: String, input: String) {
        self.init(source: source, sourceID: sourceID, chunk: 0, start: 0, end: input.unicodeScalars.count,
                  rowHash: Data(), hash: Data(), input: input, prefixLength: 0)
    }

    public init(source: String, sourceID: String, chunk: Int, start: Int, end: Int, rowHash: Data, hash: Data, input: String, prefixLength: Int) {
        self.source = source
        self.sourceID = sourceID
        self.chunk = chunk
        self.start = start
        self.end = end
        self.rowHash = rowHash
        self.hash = hash
        self.input = input
        self.prefixLength = prefixLength
    }

    /// The input's text without the prefix.
    var text: String { String(String.UnicodeScalarView(input.unicodeScalars.dropFirst(prefixLength))) }

    /// The piece of this chunk at `span` (relative to this chunk's text).
    func piece(_ span: Chunk, prefix: String) -> PendingChunk {
        let scalars = Array(input.unicodeScalars.dropFirst(prefixLength))
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[span.start..<span.end])
        let pieceInput = prefix + String(view)
        return PendingChunk(source: source, sourceID: sourceID, chunk: chunk, start: start + span.start, end: start + span.end,
                            rowHash: rowHash, hash: SourceScanner.hash(pieceInput), input: pieceInput, prefixLength: prefixLength)
    }
}
