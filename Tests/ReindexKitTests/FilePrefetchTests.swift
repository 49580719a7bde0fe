import Foundation
import Testing
@testable import ReindexKit

struct FilePrefetchTests {
    @Test func readsTheWholeFileInChunks() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prefetch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // More than one chunk and not a multiple of it: every byte is read, the last chunk short.
        let size = FilePrefetch.chunk * 2 + 12_345
        let path = dir.appendingPathComponent("f").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data(repeating: 7, count: size)))
        #expect(FilePrefetch.sequential(path: path) == Int64(size))
    }

    @Test func aMissingOrEmptyFileIsLeftToTheCheck() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prefetch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(FilePrefetch.sequential(path: dir.appendingPathComponent("missing").path) == nil)
        let empty = dir.appendingPathComponent("empty").path
        #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
        #expect(FilePrefetch.sequential(path: empty) == nil)
    }

    @Test func availableMemoryIsReadFromTheKernel() throws {
        let available = try #require(FilePrefetch.availableMemory())
        #expect(available > 0)
        #expect(available <= Int64(ProcessInfo.processInfo.physicalMemory))
    }
}
