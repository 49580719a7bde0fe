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
}
