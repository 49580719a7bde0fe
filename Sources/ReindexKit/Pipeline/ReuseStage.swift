import Foundation
import Logging

/// What the work file holds before embedding starts.
struct Reuse: Sendable {
    /// Items per source after reconciling an interrupted run's work (copied or embedded).
    var carriedBySource: [String: Int]
    /// Items per source copied from the live file.
    var reusedBySource: [String: Int]
    /// Rows cut into chunks by this run (new, changed, re-chunked).
    var chunkedRows = 0
    var stagedChunks = 0
}

/// reuse: reconciles an interrupted run's work with the fresh scan (items
/// whose row changed or vanished are dropped; a full run also drops what an
/// incremental attempt copied); copies whole every row the live file already
/// holds; cuts every other row into chunks and copies each chunk the live
/// file embedded before (an edit re-embeds only the chunks it changed).
/// Only rows that changed are chunked, so the cost follows the change.
struct ReuseStage {
    let model: ModelConfig
    let logger: Logger

    ///
    /// On a clone of the live file the unchanged rows are already there:
    /// `reconcile` deletes the items of changed and removed rows (recorded in
    /// `work_delta`), only new and changed rows are chunked, and their
    /// unchanged chunks are copied back by content hash.
    /// `resumed`: the work file is an interrupted run's.
    func run(work: WorkFile, plan: Plan, resumed: Bool = true) throws -> Reuse {
        let carried = work.isClone ? try work.reconcileClone(liveRunID: plan.live?[.runID]) : try work.reconcile(dropCopied: plan.isFull)
        let prefixLength = model.prefix.unicodeScalars.count
        let liveFormat = plan.live?[.format]
        if let liveFormat, !work.isClone {
            _ = try work.reuseWholeRows(liveFormat: liveFormat, chunking: plan.chunking, prefixLength: prefixLength)
        }
        var reuse = Reuse(carriedBySource: carried, reusedBySource: [:])
        let clone = work.isClone ? try work.cloneRows(liveRunID: plan.live?[.runID], resumed: resumed) : nil
        try work.stageSingleChunkRows(liveFormat: liveFormat, chunking: plan.chunking, prefixLength: prefixLength, clone: clone)
        let chunker = plan.chunking.chunker
        var cursor: Int64 = 0
        while true {
            let page = try work.rowsToChunk(after: cursor, limit: 256, liveFormat: liveFormat, chunking: plan.chunking, prefixLength: prefixLength, clone: clone)
            guard let last = page.last else { break }
            cursor = last.rowid
            var chunks: [PendingChunk] = []
            for (_, source, row) in page {
                chunks += Self.chunks(of: row, source: source, chunker: chunker, prefix: model.prefix, prefixLength: prefixLength)
            }
            try work.stage(chunks: chunks)
            reuse.chunkedRows += page.count
            reuse.stagedChunks += chunks.count
        }
        if work.isClone {
            _ = try work.reuseChunks()
            reuse.reusedBySource = try work.reusedInClone()
        } else {
            reuse.reusedBySource = liveFormat == nil ? try work.reusedBySource() : try work.reuseChunks()
        }
        try work.setWorkState([.mode: plan.mode.rawValue])
        logger.info("reuse", metadata: ["carried_over": "\(carried.values.reduce(0, +))", "reused": "\(reuse.reusedBySource.values.reduce(0, +))",
                                        "chunked_rows": "\(reuse.chunkedRows)", "chunks": "\(reuse.stagedChunks)"])
        return reuse
    }

    /// A row's chunks: each input is exactly `prefix` + the row's text from
    /// `start` to `end`; a row that fits one chunk is one chunk whose input
    /// (and hash) is the row's.
    static func chunks(of row: ScannedRow, source: String, chunker: Chunker, prefix: String, prefixLength: Int) -> [PendingChunk] {
        let scalars = Array(row.input.unicodeScalars.dropFirst(prefixLength))
        var text = String.UnicodeScalarView()
        text.append(contentsOf: scalars)
        let spans = chunker.chunks(String(text))
        return spans.enumerated().map { index, span in
            let input: String
            if spans.count == 1 {
                input = row.input
            } else {
                var view = String.UnicodeScalarView()
                view.append(contentsOf: scalars[span.start..<span.end])
                input = prefix + String(view)
            }
            return PendingChunk(source: source, sourceID: row.sourceID, chunk: index, start: span.start, end: span.end,
                                rowHash: row.hash, hash: spans.count == 1 ? row.hash : SourceScanner.hash(input), input: input,
                                prefixLength: prefixLength)
        }
    }
}
