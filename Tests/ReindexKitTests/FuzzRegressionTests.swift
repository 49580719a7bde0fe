import Foundation
import Testing
@testable import ReindexKit

/// Inputs `make fuzz` (Tests/Fuzz/) found crashing, kept as regressions; each
/// input is also in its target's seed corpus under Tests/Fuzz/corpus/.
struct FuzzRegressionTests {
    /// fastjson, crash-lone-high-surrogate: a high surrogate escape followed by
    /// another escape that is not a low surrogate (`\ud83d\ud83d`) overflowed
    /// UInt32 arithmetic and trapped. A server's answer could crash a run.
    @Test func aHighSurrogateNotFollowedByALowOneIsReplaced() throws {
        let twoHighs = try FastJSON.parse(Data(#"{"a":"x\ud83d\ud83d\ude00y"}"#.utf8))
        #expect(twoHighs["a"]?.stringValue == "x\u{FFFD}\u{1F600}y")
        let highThenLetter = try FastJSON.parse(Data(#"["\ud83d\u0041"]"#.utf8))
        #expect(highThenLetter.arrayValue?.first?.stringValue == "\u{FFFD}A")
        let pair = try FastJSON.parse(Data(#""\ud83d\ude00""#.utf8))
        #expect(pair.stringValue == "\u{1F600}")
        // The fuzzer's own input, verbatim: it must throw or parse, not trap.
        let input = Data(base64Encoded: "eyJhIjoiXHUwMGU5XG5cInhcdWQ4M2RcdWQ4M2RcdWRlMDAmIixkZTAwJiIsImIiOiJcdTBlLGZhbHNlLG51bGwsLTguMCwxRSsyLDwyZS01XSwiYyI6e319")!
        _ = try? FastJSON.parse(input)
    }

    /// decoders, crash-huge-index: an OpenAI answer whose `index` is beyond
    /// Int's range (`1.1e82`) trapped converting it; now it is out of range.
    @Test func anIndexBeyondIntIsOutOfRangeNotATrap() {
        for index in ["11111111111111111111111111111111111111111111111111111111111111111111111111111111110", "-1e300", "1e999", "0.5e1", "-0.5"] {
            let body = Data(#"{"data": [{"index": \#(index), "embedding": [1, 0]}]}"#.utf8)
            #expect(throws: ReindexError.self, "index \(index)") { try OpenAIEmbeddingClient.decode(body, count: 1) }
        }
        let body = Data(#"{"data": [{"index": 0.9, "embedding": [1, 0]}]}"#.utf8)
        #expect((try? OpenAIEmbeddingClient.decode(body, count: 1)) == [[1, 0]], "a fraction below count truncates, as before")
    }
}
