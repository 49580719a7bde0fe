import Foundation

/// Wall time per stage, for the summary (`stages_s`) and the bench.
struct StageClock {
    let began = ContinuousClock.now
    private var mark = ContinuousClock.now
    private(set) var seconds: [String: Double] = [:]

    /// Charges the time since the last lap to `stage`.
    mutating func lap(_ stage: String) {
        let now = ContinuousClock.now
        seconds[stage, default: 0] += (now - mark).seconds
        mark = now
    }

    var elapsed: Double { (ContinuousClock.now - began).seconds }
}
