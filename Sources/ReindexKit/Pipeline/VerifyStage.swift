import Foundation

/// verify: before the new file may replace anything, every scanned row must
/// be an item or a recorded failure, and the file must pass its checks
/// (quick_check, counts, shapes, unit norms, `vec_items`). DESIGN.md invariant 3.
struct VerifyStage {
    let prefixLength: Int

    func run(work: WorkFile) throws -> WorkFile.Accounting {
        let accounting = try work.account()
        guard accounting.unaccounted == 0 else {
            throw ReindexError.verification(detail: "\(accounting.unaccounted) scanned rows are neither embedded nor recorded as failed — rerun with --restart; if it happens again, report it")
        }
        try work.check(expected: accounting, prefixLength: prefixLength)
        return accounting
    }
}
