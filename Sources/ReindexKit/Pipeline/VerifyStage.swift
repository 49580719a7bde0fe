import Foundation

/// verify: before the new file may replace anything, every scanned row must
/// be an item or a recorded failure, and the file must pass its checks
/// (DESIGN.md invariant 3): in full (quick_check, counts, every row's
/// coverage, every vector's shape and norm, `vec_items`) for a file built
/// from nothing and periodically on the clone path (`FullCheckSchedule`);
/// otherwise in proportion to the change (`WorkFile.checkDelta`).
struct VerifyStage {
    let prefixLength: Int

    /// Settles failures and counts what the file holds; before the index is
    /// built or applied, so the index sees the settled items.
    func account(work: WorkFile, liveRunID: String? = nil) throws -> WorkFile.Accounting {
        let accounting = try work.account(candidates: try work.attributeCandidates(liveRunID: liveRunID))
        guard accounting.unaccounted == 0 else {
            throw ReindexError.verification(detail: "\(accounting.unaccounted) scanned rows are neither embedded nor recorded as failed — rerun with --restart; if it happens again, report it")
        }
        return accounting
    }

    func check(work: WorkFile, accounting: WorkFile.Accounting, full: Bool, attributes: [AttributeColumn]) throws {
        if full {
            try work.check(expected: accounting, prefixLength: prefixLength)
        } else {
            try work.checkDelta(expected: accounting, prefixLength: prefixLength, attributes: attributes)
        }
    }
}
