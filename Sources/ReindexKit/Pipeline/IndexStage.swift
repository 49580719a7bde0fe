import Foundation
import GRDB
import Logging

/// index: the derived indexes of the new file — `vec_items` when the
/// sqlite-vec extension is available (`VecIndex`) and `keywords` when the job
/// asks for it (`KeywordIndex`). Built from `items` when the file was built
/// from nothing; on a clone of the live file, maintained from the run's
/// delta (`work_delta`) in place, each index applying the same pending ids
/// in one transaction — the one call site for every derived index.
/// sqlite-vec 0.1 never reuses the slots of deleted rows, so past
/// `compact-above` dead slots `vec_items` is rebuilt (a compaction, reported
/// with its cost).
struct IndexStage {
    let plan: VecIndex.Plan
    /// The job's attributes: partition keys, metadata and auxiliary columns of `vec_items`.
    var attributes: [AttributeColumn] = []
    /// The job's `keywords`; nil drops any keyword index.
    var keywords: KeywordSettings? = nil
    var prefixLength = 0
    let logger: Logger

    func run(work: WorkFile) throws -> VecIndex.Built {
        try work.ensureRowsIndex()
        // Keywords first: FTS5's final merge frees the pages of its smaller segments, and
        // vec_items, built next, fills them (the other way round they stayed free: 1.2 MB in 5.5).
        let note = try work.buildKeywords(keywords, prefixLength: prefixLength, logger: logger)
        var built = try work.buildIndex(plan, attributes: attributes, logger: logger)
        built.meta[.keywords] = keywords?.json
        let notes = [built.note, note].compactMap { $0 }
        built.note = notes.isEmpty ? nil : notes.joined(separator: "; ")
        return built
    }

    /// The clone path: applies the pending delta, then compacts when the dead
    /// slots pass `compactAbove` of all slots. `live` is the live file's meta.
    /// `items`: the accounting's count of items (not counted again).
    func apply(work: WorkFile, live: VectorFileMeta?, items: Int, compactAbove: Double) throws -> (VecIndex.Built, CompactionSummary?) {
        // The clone's keyword index follows the delta when it is the one the job wants; otherwise
        // (turned on, off, another tokenizer) it is built anew from items and the staged rows.
        let keepKeywords = try work.keywordIndexMatches(keywords)
        var (built, compaction) = try applyVec(work: work, live: live, items: items, compactAbove: compactAbove, keywords: keepKeywords)
        if !keepKeywords, let note = try work.buildKeywords(keywords, prefixLength: prefixLength, logger: logger) {
            built.note = (built.note.map { $0 + "; " } ?? "") + note
        }
        built.meta[.keywords] = keywords?.json
        return (built, compaction)
    }

    /// `vec_items` on the clone path; `keywords`: apply the same delta to the keyword index.
    private func applyVec(work: WorkFile, live: VectorFileMeta?, items: Int, compactAbove: Double,
                          keywords: Bool) throws -> (VecIndex.Built, CompactionSummary?) {
        let prefixLength = self.prefixLength
        func applyKeywords(_ db: Database) throws {
            if keywords && self.keywords != nil { try KeywordIndex.apply(db, prefixLength: prefixLength) }
        }
        guard try work.hasVecIndex() == (plan.wanted == "vec0") else {
            // A clone resumed after `index:` changed: build (or drop) it as a build would.
            try work.applyDelta(applyKeywords)
            let built = try work.buildIndex(plan, attributes: attributes, logger: logger)
            try work.markDeltaApplied()
            try work.setWorkState([.vecDeadRows: "0"])
            return (built, nil)
        }
        guard let ext = plan.ext, plan.wanted == "vec0" else {
            try work.applyDelta(applyKeywords)
            return (VecIndex.Built(note: nil, meta: [.index: "none"]), nil)
        }
        let version = try work.loadExtension(ext)
        let started = ContinuousClock.now
        let attributes = self.attributes
        let (applied, deleted) = try work.applyDelta { db -> (Int, Int) in
            let applied = try Int.fetchOne(db, sql: "SELECT count(*) FROM (\(WorkFile.pendingDelta))") ?? 0
            let deleted = try VecIndex.apply(db, attributes: attributes)
            try applyKeywords(db)
            try db.execute(sql: "UPDATE main.work_state SET value = CAST(value AS INTEGER) + ? WHERE key = ?",
                           arguments: [deleted, WorkStateKey.vecDeadRows.rawValue])
            return (applied, deleted)
        }
        let dead = Int(try work.workState()[.vecDeadRows] ?? "0") ?? 0
        let fraction = dead > 0 ? Double(dead) / Double(items + dead) : 0
        logger.info("updated vec_items in place", metadata: ["ids": "\(applied)", "deleted": "\(deleted)", "dead_rows": "\(dead)",
                                                             "dead_fraction": "\(String(format: "%.3f", fraction))"])
        var meta: [MetaKey: String] = [.index: "vec0", .sqliteVecVersion: version, .vecDeadRows: String(dead)]
        meta[.vecChunkSize] = live?[.vecChunkSize]
        guard fraction > compactAbove else {
            let seconds = (ContinuousClock.now - started).seconds
            return (VecIndex.Built(note: String(format: "vec_items updated in place with sqlite-vec %@ (%d ids, %.2f s)", version, applied, seconds), meta: meta), nil)
        }
        logger.notice("compacting vec_items: dead slots passed compact-above", metadata: ["dead_rows": "\(dead)", "dead_fraction": "\(String(format: "%.3f", fraction))",
                                                                                         "compact_above": "\(compactAbove)"])
        let rebuildStarted = ContinuousClock.now
        var built = try work.buildIndex(plan, attributes: attributes, crashPoint: "compact", logger: logger)
        try work.setWorkState([.vecDeadRows: "0"])
        let compaction = CompactionSummary(deadRows: dead, deadFraction: fraction, seconds: (ContinuousClock.now - rebuildStarted).seconds)
        built.note = (built.note.map { $0 + "; " } ?? "") + compaction.text
        return (built, compaction)
    }
}
