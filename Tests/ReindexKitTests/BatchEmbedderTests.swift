import Foundation
import Testing
@testable import ReindexKit

struct BatchEmbedderTests {
    @Test func retryAfterWinsOverBackoffAndIsCapped() {
        #expect(BatchEmbedder.backoff(attempt: 1, retryAfter: "3") == 3)
        #expect(BatchEmbedder.backoff(attempt: 1, retryAfter: "100000") == 300)
        let date = Date().addingTimeInterval(20)
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        let d = BatchEmbedder.backoff(attempt: 1, retryAfter: f.string(from: date))
        #expect(d > 15 && d <= 20)
    }

    @Test func exponentialBackoffWithJitterStaysInItsWindow() {
        for attempt in 1...12 {
            let cap = min(30, 0.25 * pow(2, Double(attempt - 1)))
            for _ in 0..<20 {
                let d = BatchEmbedder.backoff(attempt: attempt, retryAfter: nil)
                #expect(d >= cap / 2 && d <= cap)
            }
        }
    }

    @Test(arguments: [
        ("input is too large to process. increase the physical batch size", true),
        ("the request exceeds the available context size, try increasing it", true),
        ("the input length exceeds the context length", true),
        ("Input validation error: `inputs` must have less than 512 tokens. Given: 700", true),
        ("This model's maximum context length is 8192 tokens", true),
        ("input[3] is invalid: contains forbidden token", false),
    ])
    func recognisesTooLongInputs(_ message: String, _ expected: Bool) {
        #expect(BatchEmbedder.isTooLong(message) == expected)
    }

    @Test func batchLimitOnlyShrinks() {
        let l = BatchLimit(64)
        #expect(l.shrink(to: 16))
        #expect(!l.shrink(to: 32))
        #expect(l.current == 16)
        #expect(l.shrink(to: 0) && l.current == 1)
    }
}
