import Foundation

/// FastJSON.parse on any bytes: it must return a value or throw, never crash,
/// and every accessor the decoders use must be safe on what it returns.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFastJSON(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let data = start.map { Data(bytes: $0, count: count) } ?? Data()
    guard let json = try? FastJSON.parse(data) else { return 0 }
    _ = json.floatsValue
    _ = json["data"]?.arrayValue?.first?["embedding"]?.floatsValue
    _ = json["error"]?["message"]?.stringValue
    _ = json.arrayValue?.count
    _ = json["index"]?.doubleValue
    return 0
}
