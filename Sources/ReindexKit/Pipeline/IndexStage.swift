import Foundation
import Logging

/// index: builds the work file's derived indexes from its items —
/// `vec_items` when the sqlite-vec extension is available (`VecIndex`) and
/// `keywords` when the job asks for it (`KeywordIndex`) — and returns the
/// meta keys and the summary note they leave.
struct IndexStage {
    let plan: VecIndex.Plan
    /// The job's attributes: partition keys, metadata and auxiliary columns of `vec_items`.
    var attributes: [AttributeColumn] = []
    /// The job's `keywords`; nil drops any keyword index.
    var keywords: KeywordSettings? = nil
    var prefixLength = 0
    let logger: Logger

    func run(work: WorkFile) throws -> VecIndex.Built {
        // Keywords first: FTS5's final merge frees the pages of its smaller segments, and
        // vec_items, built next, fills them (the other way round they stayed free: 1.2 MB in 5.5).
        let note = try work.buildKeywords(keywords, prefixLength: prefixLength, logger: logger)
        var built = try work.buildIndex(plan, attributes: attributes, logger: logger)
        built.meta[.keywords] = keywords?.json
        let notes = [built.note, note].compactMap { $0 }
        built.note = notes.isEmpty ? nil : notes.joined(separator: "; ")
        return built
    }
}
