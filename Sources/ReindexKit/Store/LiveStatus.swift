import Foundation

/// The live vector file as a base for reuse, or why it cannot be one (the
/// reason a run rebuilds in full, shown in the summary and the dry run).
public enum LiveStatus: Sendable, Equatable {
    case usable(meta: VectorFileMeta)
    case unusable(reason: String)

    public var meta: VectorFileMeta? {
        if case .usable(let m) = self { return m }
        return nil
    }

    public var reason: String? {
        if case .unusable(let r) = self { return r }
        return nil
    }
}
