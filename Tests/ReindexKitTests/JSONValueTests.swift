import Foundation
import Testing
@testable import ReindexKit

struct JSONValueTests {
    @Test func numberArraysBecomeFloatsMatchingStrtod() throws {
        var values: [Double] = [0, -0.0, 1, -1, 0.1, 3.14159265358979, 1e-7, -2.5e-12, 6.02214076e23, 123456789012345678901234.0, 0.000123456789]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 { values.append(Double(Float.random(in: -3...3, using: &rng))) }
        let text = "[" + values.map { "\($0)" }.joined(separator: ",") + "]"
        guard case .floats(let parsed) = try JSONValue.parse(Data(text.utf8)) else {
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
        let v = try JSONValue.parse(Data(json.utf8))
        #expect(v["s"]?.stringValue == "q\"\\/\né😀")
        #expect(v["f"]?.doubleValue == -150)
        #expect(v["a"]?.arrayValue?.count == 4)
        #expect(v["n"]?["e"]?.floatsValue == [])
    }

    @Test func pythonNaNIsANumberNotAParseError() throws {
        guard case .floats(let f) = try JSONValue.parse(Data("[NaN, -Infinity, 1]".utf8)) else { Issue.record("no floats"); return }
        #expect(f[0].isNaN && f[1] == -.infinity && f[2] == 1)
    }

    @Test(arguments: ["", "[1,", "{\"a\" 1}", "[1.]", "tru", "[1] x", "\"abc"])
    func malformedInputIsRejected(_ text: String) {
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(Data(text.utf8)) }
    }

    @Test func base64FloatsMatchFoundation() throws {
        var rng = SystemRandomNumberGenerator()
        for count in [0, 1, 2, 3, 5, 384, 1536] {
            let floats = (0..<count).map { _ in Float.random(in: -3...3, using: &rng) }
            let text = floats.withUnsafeBytes { Data($0) }.base64EncodedString()
            #expect(JSONValue.float32s(base64: text) == floats)
            #expect(Endpoint.floats(base64: text) == floats)
        }
        // Not base64, or not a whole number of float32s.
        for bad in ["AAAA", "AAA", "AAAAAA=", "AA=A", "AAAA AAA", "AAA*", "=AAA", "AAAAA=A="] {
            #expect(JSONValue.float32s(base64: bad) == nil, "\(bad)")
        }
    }

    @Test func longStringsAndEscapesAfterTheFastPath() throws {
        let long = String(repeating: "A", count: 5000)
        let json = "{\"a\": \"\(long)\", \"b\": \"x\\\"y\", \"c\": \"\"}"
        let v = try JSONValue.parse(Data(json.utf8))
        #expect(v["a"]?.stringValue == long)
        #expect(v["b"]?.stringValue == "x\"y")
        #expect(v["c"]?.stringValue == "")
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(Data("\"abc\\".utf8)) }
    }
}
