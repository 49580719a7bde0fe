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

    @Test func probesThisMachine() {
        #expect(FileSystemProbe.probe("/tmp/does/not/exist/yet.db") != nil, "falls back to the nearest existing parent")
    }
}
