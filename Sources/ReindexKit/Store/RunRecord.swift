import Foundation

/// One row of the `runs` table: the history of the runs that built a file.
struct RunRecord: Sendable {
    var runID: String
    var mode: String
    var fullReason: String?
    var startedAt: Int64
    var finishedAt: Int64
    var scanned: Int
    var skipped: Int
    var embedded: Int
    var reused: Int
    var removed: Int
    var failed: Int
    var requests: Int
    var durationSeconds: Double
    var itemsPerSecond: Double?
}
