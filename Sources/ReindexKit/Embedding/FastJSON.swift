import Foundation

/// The JSON reader for what embedding servers answer: arrays of numbers go
/// straight into `[Float]` with a fast decimal parser (~14× faster than
/// `JSONDecoder` for 64 × 384 floats, which costs ~9 ms a response — slower
/// than the servers), strings (base64 vectors, error messages) and the
/// objects and arrays around them; nothing more. Nesting is bounded (64).
indirect enum FastJSON: Sendable {
    case number(Double)
    case string(String)
    /// An array whose elements are all numbers.
    case floats([Float])
    case array([FastJSON])
    case object([String: FastJSON])
    /// `true`, `false` or `null`: read, and used by nothing.
    case literal

    subscript(key: String) -> FastJSON? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    var doubleValue: Double? { if case .number(let d) = self { return d } else { return nil } }
    var arrayValue: [FastJSON]? { if case .array(let a) = self { return a } else { return nil } }
    /// A vector: an array of numbers (an empty array is an empty vector).
    var floatsValue: [Float]? {
        switch self {
        case .floats(let f): return f
        case .array(let a) where a.isEmpty: return []
        default: return nil
        }
    }

    struct ParseError: Error, CustomStringConvertible {
        var offset: Int
        var reason: String
        var description: String { "invalid JSON at byte \(offset): \(reason)" }
    }

    static func parse(_ data: Data) throws -> FastJSON {
        try data.withUnsafeBytes { raw in
            var parser = JSONParser(bytes: raw.bindMemory(to: UInt8.self))
            parser.skipWhitespace()
            let value = try parser.parseValue(depth: 0)
            parser.skipWhitespace()
            guard parser.index == parser.bytes.count else { throw parser.error("trailing characters") }
            return value
        }
    }
}

private struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    func error(_ reason: String) -> FastJSON.ParseError { .init(offset: index, reason: reason) }

    @inline(__always) mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    @inline(__always) func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func expect(_ literal: StaticString) throws {
        let n = literal.utf8CodeUnitCount
        guard index + n <= bytes.count else { throw error("unexpected end") }
        let p = literal.utf8Start
        for i in 0..<n where bytes[index + i] != p[i] { throw error("unexpected character") }
        index += n
    }

    mutating func parseValue(depth: Int) throws -> FastJSON {
        guard depth < 64 else { throw error("nested too deeply") }
        guard let c = peek() else { throw error("unexpected end") }
        switch c {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expect("true"); return .literal
        case UInt8(ascii: "f"): try expect("false"); return .literal
        case UInt8(ascii: "n"): try expect("null"); return .literal
        default: return .number(try parseNumber())
        }
    }

    mutating func parseObject(depth: Int) throws -> FastJSON {
        index += 1
        var result: [String: FastJSON] = [:]
        skipWhitespace()
        if peek() == UInt8(ascii: "}") { index += 1; return .object(result) }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw error("expected a key") }
            let key = try parseString()
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { throw error("expected ':'") }
            index += 1
            skipWhitespace()
            result[key] = try parseValue(depth: depth + 1)
            skipWhitespace()
            guard let c = peek() else { throw error("unexpected end") }
            index += 1
            if c == UInt8(ascii: "}") { return .object(result) }
            guard c == UInt8(ascii: ",") else { throw error("expected ',' or '}'") }
        }
    }

    mutating func parseArray(depth: Int) throws -> FastJSON {
        index += 1
        skipWhitespace()
        if peek() == UInt8(ascii: "]") { index += 1; return .array([]) }
        if let c = peek(), isNumberStart(c) {
            // Fast path: numbers only, straight into [Float].
            var floats: [Float] = []
            floats.reserveCapacity(1024)
            while true {
                skipWhitespace()
                guard let c = peek() else { throw error("unexpected end") }
                if !isNumberStart(c) {
                    // Mixed array: fall back to the general form.
                    var values = floats.map { FastJSON.number(Double($0)) }
                    values.append(try parseValue(depth: depth + 1))
                    return try finishArray(&values, depth: depth)
                }
                floats.append(Float(try parseNumber()))
                skipWhitespace()
                guard let d = peek() else { throw error("unexpected end") }
                index += 1
                if d == UInt8(ascii: "]") { return .floats(floats) }
                guard d == UInt8(ascii: ",") else { throw error("expected ',' or ']'") }
            }
        }
        var values: [FastJSON] = [try parseValue(depth: depth + 1)]
        return try finishArray(&values, depth: depth)
    }

    mutating func finishArray(_ values: inout [FastJSON], depth: Int) throws -> FastJSON {
        while true {
            skipWhitespace()
            guard let c = peek() else { throw error("unexpected end") }
            index += 1
            if c == UInt8(ascii: "]") { return .array(values) }
            guard c == UInt8(ascii: ",") else { throw error("expected ',' or ']'") }
            skipWhitespace()
            values.append(try parseValue(depth: depth + 1))
        }
    }

    @inline(__always) func isNumberStart(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "-")
            || c == UInt8(ascii: "N") || c == UInt8(ascii: "I")
    }

    private static let powers: [Double] = (0...22).map { pow(10.0, Double($0)) }

    /// Decimal to Double via a 64-bit mantissa and an exact power of ten; the
    /// result is within an ulp of float32 precision, which is all we keep.
    /// Accepts Python's NaN/Infinity so they are reported as non-finite
    /// vectors rather than as malformed JSON.
    mutating func parseNumber() throws -> Double {
        var negative = false
        if peek() == UInt8(ascii: "-") { negative = true; index += 1 }
        if peek() == UInt8(ascii: "N") { try expect("NaN"); return .nan }
        if peek() == UInt8(ascii: "I") { try expect("Infinity"); return negative ? -.infinity : .infinity }
        var mantissa: UInt64 = 0
        var digits = 0
        var exponent = 0
        var sawDigit = false
        while index < bytes.count {
            let d = bytes[index] &- UInt8(ascii: "0")
            guard d < 10 else { break }
            sawDigit = true
            if digits < 19 { mantissa = mantissa &* 10 &+ UInt64(d); if mantissa != 0 { digits += 1 } } else { exponent += 1 }
            index += 1
        }
        guard sawDigit else { throw error("expected a value") }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var fractionDigits = false
            while index < bytes.count {
                let d = bytes[index] &- UInt8(ascii: "0")
                guard d < 10 else { break }
                fractionDigits = true
                if digits < 19 { mantissa = mantissa &* 10 &+ UInt64(d); exponent -= 1; if mantissa != 0 { digits += 1 } }
                index += 1
            }
            guard fractionDigits else { throw error("expected digits after '.'") }
        }
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            var expNegative = false
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
                expNegative = bytes[index] == UInt8(ascii: "-"); index += 1
            }
            var e = 0
            var sawExp = false
            while index < bytes.count {
                let d = bytes[index] &- UInt8(ascii: "0")
                guard d < 10 else { break }
                sawExp = true
                if e < 100_000 { e = e * 10 + Int(d) }
                index += 1
            }
            guard sawExp else { throw error("expected exponent digits") }
            exponent += expNegative ? -e : e
        }
        var value = Double(mantissa)
        if exponent != 0 && mantissa != 0 {
            if exponent < 0 && exponent >= -22 {
                value /= Self.powers[-exponent]
            } else if exponent > 0 && exponent <= 22 {
                value *= Self.powers[exponent]
            } else {
                value *= pow(10.0, Double(exponent))
            }
        }
        return negative ? -value : value
    }

    mutating func parseString() throws -> String {
        index += 1
        let start = index
        // Fast path: no escapes. memchr finds the closing quote of a long
        // string (a base64 vector is ~2 KB) far faster than a byte loop.
        if let base = bytes.baseAddress, start < bytes.count,
           let quote = memchr(base + start, Int32(UInt8(ascii: "\"")), bytes.count - start) {
            let end = base.distance(to: quote.assumingMemoryBound(to: UInt8.self))
            if memchr(base + start, Int32(UInt8(ascii: "\\")), end - start) == nil {
                index = end + 1
                return String(decoding: UnsafeBufferPointer(start: base + start, count: end - start), as: UTF8.self)
            }
        }
        while index < bytes.count {
            let c = bytes[index]
            if c == UInt8(ascii: "\\") { break }
            if c == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                index += 1
                return s
            }
            index += 1
        }
        var out = [UInt8](UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let c = bytes[index]
            index += 1
            switch c {
            case UInt8(ascii: "\""):
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard let e = peek() else { throw error("unexpected end") }
                index += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar), peek() == UInt8(ascii: "\\"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "u") {
                        let high = index
                        index += 2
                        let low = try hex4()
                        if (0xDC00..<0xE000).contains(low) {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            index = high  // not a pair (found by fuzzing): the next escape stands alone
                        }
                    }
                    out.append(contentsOf: Array(String(Unicode.Scalar(scalar) ?? "\u{FFFD}").utf8))
                default: out.append(e)
                }
            default:
                out.append(c)
            }
        }
        throw error("unterminated string")
    }

    mutating func hex4() throws -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("bad \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[index]
            index += 1
            v <<= 4
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v |= UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v |= UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): v |= UInt32(c - UInt8(ascii: "A") + 10)
            default: throw error("bad \\u escape")
            }
        }
        return v
    }
}
