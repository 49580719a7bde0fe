import Foundation

/// Whether a run reuses the live file's vectors (`incremental`) or embeds
/// every row (`full`: requested, or the live file is no usable base).
public enum RunMode: String, Sendable, Equatable, Codable {
    case full
    case incremental
}
