import Foundation

/// A small JSON reader tuned for embedding responses. Arrays of numbers are
/// decoded straight into `[Float]` with a fast decimal parser, because
/// decoding 64 × 384 floats with Foundation's decoders costs about 9 ms per
/// response — slower than the model servers this job talks to.
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    /// An array whose elements are all numbers.
    case floats([Float])
    case array([JSONValue])
    case object([String: JSONValue])

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var doubleValue: Double? { if case .number(let d) = self { return d } else { return nil } }
    public var arrayValue: [JSONValue]? {
        switch self {
        case .array(let a): return a
        case .floats(let f): return f.map { .number(Double($0)) }
        default: return nil
        }
    }
    public var floatsValue: [Float]? {
        switch self {
        case .floats(let f): return f
        case .array(let a) where a.isEmpty: return []
        default: return nil
        }
    }

    public struct ParseError: Error, CustomStringConvertible {
        public var offset: Int
        public var reason: String
        public var description: String { "invalid JSON at byte \(offset): \(reason)" }
    }

    public static func parse(_ data: Data) throws -> JSONValue {
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

    func error(_ reason: String) -> JSONValue.ParseError { .init(offset: index, reason: reason) }

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

    mutating func parseValue(depth: Int) throws -> JSONValue {
        guard depth < 64 else { throw error("nested too deeply") }
        guard let c = peek() else { throw error("unexpected end") }
        switch c {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        default: return .number(try parseNumber())
        }
    }

    mutating func parseObject(depth: Int) throws -> JSONValue {
        index += 1
        var result: [String: JSONValue] = [:]
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

    mutating func parseArray(depth: Int) throws -> JSONValue {
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
                    var values = floats.map { JSONValue.number(Double($0)) }
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
        var values: [JSONValue] = [try parseValue(depth: depth + 1)]
        return try finishArray(&values, depth: depth)
    }

    mutating func finishArray(_ values: inout [JSONValue], depth: Int) throws -> JSONValue {
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
                        index += 2
                        let low = try hex4()
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low &- 0xDC00)
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

extension JSONValue {
    /// Decodes standard base64 (padded, no whitespace) of little-endian
    /// float32 straight into `[Float]`; nil when it is not valid base64 or
    /// not a whole number of floats. One pass and one allocation, instead of
    /// `Data(base64Encoded:)` and a copy into an array.
    public static func float32s(base64 text: String) -> [Float]? {
        var text = text
        return base64Table.withUnsafeBufferPointer { table in
            text.withUTF8 { src -> [Float]? in
                guard src.count % 4 == 0 else { return nil }
                let pad = UInt8(ascii: "=")
                var padding = 0
                if src.count >= 4, src[src.count - 1] == pad { padding = src[src.count - 2] == pad ? 2 : 1 }
                let byteCount = src.count / 4 * 3 - padding
                guard byteCount % 4 == 0 else { return nil }
                guard byteCount > 0 else { return [] }
                var bad: UInt8 = 0
                let floats = [Float](unsafeUninitializedCapacity: byteCount / 4) { buffer, initialized in
                    let out = UnsafeMutableRawPointer(buffer.baseAddress!)
                    // Whole groups: 4 characters → 3 bytes, no branches.
                    let groups = src.count / 4 - (padding > 0 ? 1 : 0)
                    var o = 0
                    for g in 0..<groups {
                        let i = g &* 4
                        let a = table[Int(src[i])], b = table[Int(src[i &+ 1])]
                        let c = table[Int(src[i &+ 2])], d = table[Int(src[i &+ 3])]
                        bad |= a | b | c | d
                        let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                        out.storeBytes(of: UInt8(truncatingIfNeeded: v >> 16), toByteOffset: o, as: UInt8.self)
                        out.storeBytes(of: UInt8(truncatingIfNeeded: v >> 8), toByteOffset: o &+ 1, as: UInt8.self)
                        out.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: o &+ 2, as: UInt8.self)
                        o &+= 3
                    }
                    if padding > 0 {
                        // The padded last group carries 3 − padding bytes.
                        let i = src.count - 4
                        let a = table[Int(src[i])], b = table[Int(src[i + 1])]
                        let c = padding == 2 ? 0 : table[Int(src[i + 2])]
                        bad |= a | b | c
                        let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6
                        out.storeBytes(of: UInt8(truncatingIfNeeded: v >> 16), toByteOffset: o, as: UInt8.self)
                        if padding == 1 { out.storeBytes(of: UInt8(truncatingIfNeeded: v >> 8), toByteOffset: o + 1, as: UInt8.self) }
                    }
                    #if _endian(big)
                    for k in 0..<(byteCount / 4) { buffer[k] = Float(bitPattern: UInt32(littleEndian: buffer[k].bitPattern)) }
                    #endif
                    initialized = byteCount / 4
                }
                return bad & 0x80 == 0 ? floats : nil
            }
        }
    }

    /// base64 alphabet → 6-bit value; 0xFF for anything else.
    private static let base64Table: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()
}
