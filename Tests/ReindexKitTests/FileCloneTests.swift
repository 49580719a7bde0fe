import Foundation
import Testing
@testable import ReindexKit

/// The kernel-side copy behind the clone path: the bytes, the mode, and a
/// destination that is replaced, never appended to.
struct FileCloneTests {
    @Test func copiesEveryByteWithTheSourcesModeAndReplacesTheDestination() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fileclone-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = dir.appendingPathComponent("live.db").path
        let destination = dir.appendingPathComponent("live.db.work").path
        // Larger than one copy_file_range call would need to be exact, with a tail that is not a page.
        var bytes = [UInt8](repeating: 0, count: 3 << 20 + 12_345)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13) }
        try Data(bytes).write(to: URL(fileURLWithPath: source))
        chmod(source, 0o640)
        try Data(repeating: 0xEE, count: 9 << 20).write(to: URL(fileURLWithPath: destination))

        let method = try FileClone.copy(source, to: destination)
        #expect([FileClone.Method.reflink, .copyFileRange, .readWrite].contains(method))
        #expect(try Data(contentsOf: URL(fileURLWithPath: destination)) == Data(bytes))
        var st = stat()
        #expect(stat(destination, &st) == 0 && st.st_mode & 0o777 == 0o640)
        #expect(FileClone.ficlone == 0x4004_9409)
    }

    @Test func aMissingSourceIsAnIOErrorNamingIt() throws {
        #expect {
            _ = try FileClone.copy("/nonexistent/live.db", to: FileManager.default.temporaryDirectory.appendingPathComponent("x-\(UUID())").path)
        } throws: { error in
            guard let e = error as? ReindexError, case .io(let path, let detail) = e else { return false }
            return path == "/nonexistent/live.db" && detail.contains("cannot open to clone it") && e.exitCode == 74
        }
    }
}
