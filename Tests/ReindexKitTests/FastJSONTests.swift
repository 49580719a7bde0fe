import Foundation
import Testing
@testable import ReindexKit

struct FastJSONTests {
    @Test func numberArraysBecomeFloatsMatchingStrtod() throws {
        var values: [Double] = [0, -0.0, 1, -1, 0.1, 3.14159265358979, 1e-7, -2.5e-12, 6.02214076e23, 123456789012345678901234.0, 0.000123456789]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 { values.append(Double(Float.random(in: -3...3, using: &rng))) }
        let text = "[" + values.map { "\($0)" }.joined(separator: ",") + "]"
        guard case .floats(let parsed) = try FastJSON.parse(Data(text.utf8)) else {
            Issue.record("not parsed as floats"); return
        }
        #expect(parsed.count == values.count)
        for (p, v) in zip(parsed, values) {
            let expected = Float(v)
            #expect(p == expected || abs(p - expected) <= abs(expected) * 1.2e-7, "\(v) parsed as \(p)")
        }
    }

    @Test func objectsStringsEscapesAndMixedArrays() throws {
        let json = #"{"a": [1, "x", null, true], "s": "q\"\\\/\n\u00e9\ud83d\ude00", "n": {"e": []}, "f": -1.5E+2}"#
        let v = try FastJSON.parse(Data(json.utf8))
        #expect(v["s"]?.stringValue == "q\"\\/\né😀")
        #expect(v["f"]?.doubleValue == -150)
        #expect(v["a"]?.arrayValue?.count == 4)
        #expect(v["n"]?["e"]?.floatsValue == [])
    }

    @Test func pythonNaNIsANumberNotAParseError() throws {
        guard case .floats(let f) = try FastJSON.parse(Data("[NaN, -Infinity, 1]".utf8)) else { Issue.record("no floats"); return }
        #expect(f[0].isNaN && f[1] == -.infinity && f[2] == 1)
    }

    @Test(arguments: ["", "[1,", "{\"a\" 1}", "[1.]", "tru", "[1] x", "\"abc"])
    func malformedInputIsRejected(_ text: String) {
        #expect(throws: FastJSON.ParseError.self) { try FastJSON.parse(Data(text.utf8)) }
    }

    @Test func longStringsAndEscapesAfterTheFastPath() throws {
        let long = String(repeating: "A", count: 5000)
        let json = "{\"a\": \"\(long)\", \"b\": \"x\\\"y\", \"c\": \"\"}"
        let v = try FastJSON.parse(Data(json.utf8))
        #expect(v["a"]?.stringValue == long)
        #expect(v["b"]?.stringValue == "x\"y")
        #expect(v["c"]?.stringValue == "")
        #expect(throws: FastJSON.ParseError.self) { try FastJSON.parse(Data("\"abc\\".utf8)) }
    }

    @Test func nestingIsBounded() throws {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: FastJSON.ParseError.self) { try FastJSON.parse(Data(deep.utf8)) }
        let fine = String(repeating: "[", count: 60) + "1" + String(repeating: "]", count: 60)
        _ = try FastJSON.parse(Data(fine.utf8))
    }
}
