import Foundation
import Testing
@testable import ReindexKit

/// The storage decision with simulated statfs results.
struct FileSystemProbeTests {
    let ext4 = FileSystemProbe.kind(magic: 0xEF53)
    let nfs = FileSystemProbe.kind(magic: 0x6969)
    let cifs = FileSystemProbe.kind(magic: 0xFF53_4D42)
    let overlay = FileSystemProbe.kind(magic: 0x794C_7630)
    let tmpfs = FileSystemProbe.kind(magic: 0x0102_1994)

    @Test func knownMagicNumbers() {
        #expect(nfs.name == "nfs" && nfs.isNetwork)
        #expect(FileSystemProbe.kind(magic: 0x517B).isNetwork)
        #expect(FileSystemProbe.kind(magic: 0xFE53_4D42).isNetwork)
        #expect(FileSystemProbe.kind(magic: 0x6573_5546).isNetwork)
        #expect(FileSystemProbe.kind(magic: 0x0102_1997).isNetwork)
        #expect(FileSystemProbe.kind(magic: 0x00C3_6400).isNetwork)
        #expect(FileSystemProbe.kind(magic: 0x0BD0_0BD0).isNetwork)
        #expect(overlay.isLayered && !overlay.isNetwork)
        #expect(!ext4.isNetwork && ext4.name == "ext4")
        #expect(FileSystemProbe.kind(magic: 0x1234).name == "unknown")
    }

    @Test func localOutputBuildsBesideItWithWAL() {
        let d = FileSystemProbe.decide(output: ext4, work: tmpfs, primary: ext4, forcedWorkDir: false)
        #expect(!d.buildLocally && d.workWAL && d.notes.isEmpty)
    }

    @Test(arguments: [0x6969, 0xFF53_4D42, 0x517B, 0x6573_5546] as [UInt64])
    func networkOutputBuildsLocallyAndCopies(magic: UInt64) {
        let d = FileSystemProbe.decide(output: FileSystemProbe.kind(magic: magic), work: ext4, primary: ext4, forcedWorkDir: false)
        #expect(d.buildLocally && d.workWAL)
        #expect(d.notes.contains { $0.contains("network filesystem") })
    }

    @Test func networkEverywhereNeverUsesWAL() {
        let d = FileSystemProbe.decide(output: nfs, work: cifs, primary: nfs, forcedWorkDir: false)
        #expect(d.buildLocally && !d.workWAL)
        #expect(d.notes.count == 3)
    }

    @Test func overlayIsKeptOffWAL() {
        let d = FileSystemProbe.decide(output: overlay, work: ext4, primary: ext4, forcedWorkDir: false)
        #expect(!d.buildLocally && !d.workWAL)
    }

    @Test func forcedWorkDirAndUnknownFilesystems() {
        #expect(FileSystemProbe.decide(output: ext4, work: ext4, primary: ext4, forcedWorkDir: true).buildLocally)
        #expect(!FileSystemProbe.decide(output: nil, work: nil, primary: nil, forcedWorkDir: false).workWAL)
    }

    #if os(Linux)
    /// statfs(2) on real directories: a directory the test creates, the temp
    /// directory and /proc (procfs, never the filesystem of `/`), each compared
    /// with what `stat -f -c %t` prints; a path that does not exist yet is
    /// probed through its nearest existing parent, not through `/`.
    @Test func probesThisMachine() throws {
        let temp = FileManager.default.temporaryDirectory
        let dir = temp.appendingPathComponent("fsprobe-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        for path in [dir.path, temp.path, "/proc"] {
            let magic = try #require(try Self.statMagic(path), "stat -f -c %t \(path) printed no hex number")
            let kind = try #require(FileSystemProbe.probe(path), "statfs(\(path)) failed")
            #expect(kind.magic == magic, "\(path): probe says \(kind), stat -f says 0x\(String(magic, radix: 16))")
            #expect(kind == FileSystemProbe.kind(magic: magic))
            let missing = try #require(FileSystemProbe.probe(path + "/not/yet/vectors.db"))
            #expect(missing.magic == magic, "\(path)/not/yet/vectors.db: probe says \(missing), its nearest parent is 0x\(String(magic, radix: 16))")
        }
        #expect(FileSystemProbe.probe("/proc")?.magic == 0x9FA0, "procfs's magic number")
        #expect(FileSystemProbe.probe(dir.path) == FileSystemProbe.probe(temp.path), "a directory made in the temp dir is on its filesystem")
    }

    /// `stat -f -c %t path`: the filesystem's magic number in hex, as statfs returns it.
    static func statMagic(_ path: String) throws -> UInt64? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["stat", "-f", "-c", "%t", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return UInt64(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines), radix: 16)
    }
    #endif
}
