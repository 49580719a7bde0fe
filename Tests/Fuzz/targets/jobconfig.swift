import Foundation

/// The job-file reader on any text: `JobConfig.parse` returns a job or
/// throws `ReindexError`, never crashes (Yams, `${VAR}` expansion, every
/// key's validation, `output-mode`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJobConfig(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let data = start.map { Data(bytes: $0, count: count) } ?? Data()
    let yaml = String(decoding: data, as: UTF8.self)
    do {
        let job = try JobConfig.parse(yaml: yaml, file: "/fuzz/job.yml", environment: ["HOME": "/root", "KEY_ENV": "x"])
        _ = job.model.responseLimit
    } catch is ReindexError {
    } catch {
        fatalError("JobConfig.parse threw something other than ReindexError: \(error)")
    }
    return 0
}
