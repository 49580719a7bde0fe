import Foundation
import Testing
@testable import ReindexKit

/// When the clone path checks every vector: every N publishing runs or after T hours.
struct FullCheckScheduleTests {
    let schedule = FullCheckSchedule(everyRuns: 3, afterHours: 24)

    func meta(at: Date?, runs: Int?) -> VectorFileMeta {
        var m = VectorFileMeta()
        m[.fullCheckAt] = at.map { ISO8601DateFormatter().string(from: $0) }
        m[.runsSinceFullCheck] = runs.map(String.init)
        return m
    }

    @Test func dueAfterNRunsOrTHoursOrWhenUnknown() {
        let now = Date()
        #expect(!schedule.due(live: meta(at: now, runs: 0), now: now))
        #expect(!schedule.due(live: meta(at: now, runs: 1), now: now))
        #expect(schedule.due(live: meta(at: now, runs: 2), now: now), "the third run since the check")
        #expect(schedule.due(live: meta(at: now.addingTimeInterval(-25 * 3600), runs: 0), now: now))
        #expect(schedule.due(live: meta(at: nil, runs: nil), now: now), "a file from before the keys")
        #expect(schedule.due(live: nil, now: now))
    }

    @Test func aFullCheckResetsTheCountAndAPartialOneKeepsTheTime() {
        let then = Date(timeIntervalSince1970: 1_800_000_000)
        let live = meta(at: then, runs: 1)
        #expect(schedule.meta(fullCheck: false, live: live)[.runsSinceFullCheck] == "2")
        #expect(schedule.meta(fullCheck: false, live: live)[.fullCheckAt] == live[.fullCheckAt])
        let full = schedule.meta(fullCheck: true, live: live, now: then.addingTimeInterval(60))
        #expect(full[.runsSinceFullCheck] == "0" && full[.fullCheckAt] == ISO8601DateFormatter().string(from: then.addingTimeInterval(60)))
    }
}
