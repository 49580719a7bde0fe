import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A kernel-side copy of a file, the cheapest the filesystem offers: a
/// reflink (`FICLONE`: the new file shares the old one's blocks, no data is
/// copied; btrfs, XFS with reflink, bcachefs, ZFS with block cloning), else
/// `copy_file_range` (the kernel copies, without the bytes passing through
/// this process; server-side on NFS 4.2), else plain read/write. The copy is
/// created 0600, then gets the source's mode and group (never more readable
/// than the source, even for an instant), and is fsynced.
public enum FileClone {
    /// How a copy was made, as the log and the run summary say it.
    public enum Method: String, Sendable, Codable {
        case reflink = "clone: reflink"
        case copyFileRange = "clone: copy_file_range"
        case readWrite = "clone: copy"
    }

    /// The `base` of a finished but unpublished file that an incremental run
    /// adopts (`Checkpoint.adoptFinished`): complete and checked, so it is
    /// built on exactly as a clone would be, without copying anything.
    public static let adopted = "clone: adopted"

    /// `FICLONE` from `<linux/fs.h>`: `_IOW(0x94, 9, int)` = direction write
    /// (1 << 30) | size of int (4 << 16) | type 0x94 << 8 | number 9. A macro,
    /// so Swift cannot import it.
    static let ficlone: UInt = 0x4004_9409

    /// glibc's `copy_file_range` (2.27+), looked up at run time: Glibc's
    /// module declares it only under `_GNU_SOURCE`, which Swift's import does
    /// not define. nil where the C library lacks it (read/write then).
    private typealias CopyFileRange = @convention(c) (Int32, UnsafeMutablePointer<Int64>?, Int32, UnsafeMutablePointer<Int64>?, Int, UInt32) -> Int
    private static let copyFileRangeCall: CopyFileRange? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "copy_file_range") else { return nil }
        return unsafeBitCast(symbol, to: CopyFileRange.self)
    }()

    /// Bytes per `copy_file_range` call: small enough that a stop (or a
    /// crash point) is reached between calls, large enough to cost nothing.
    static let chunk = 64 << 20

    /// Copies `source` to `destination` (replaced if it exists). Errors name
    /// the path and the system's reason (exit 74). `crashPoint` is reached
    /// between the calls that copy (the clone path's `copy`).
    public static func copy(_ source: String, to destination: String, crashPoint: String? = "copy") throws -> Method {
        let src = open(source, O_RDONLY | O_CLOEXEC)
        guard src >= 0 else { throw FileOps.fail(source, "cannot open to clone it") }
        defer { close(src) }
        unlink(destination)
        let dst = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard dst >= 0 else { throw FileOps.fail(destination, "cannot create the clone") }
        var done = false
        defer { close(dst); if !done { unlink(destination) } }
        try FilePermissions.copying(from: src)?.apply(fd: dst, path: destination)
        var st = stat()
        guard fstat(src, &st) == 0 else { throw FileOps.fail(source, "cannot stat to clone it") }
        let method: Method
        if ioctl(dst, ficlone, src) == 0 {
            method = .reflink
        } else if let copied = try copyFileRange(src, dst, size: Int(st.st_size), destination: destination, crashPoint: crashPoint) {
            method = copied
        } else {
            try readWrite(src, dst, source: source, destination: destination, crashPoint: crashPoint)
            method = .readWrite
        }
        guard fsync(dst) == 0 else { throw FileOps.fail(destination, "fsync of the clone failed") }
        done = true
        return method
    }

    /// The `copy_file_range` loop; nil when the kernel or filesystem cannot
    /// (`EXDEV` across filesystems on older kernels, `ENOSYS`, `EOPNOTSUPP`,
    /// `EINVAL`) before anything was copied, so read/write takes over.
    private static func copyFileRange(_ src: Int32, _ dst: Int32, size: Int, destination: String, crashPoint: String?) throws -> Method? {
        guard let copyFileRange = copyFileRangeCall else { return nil }
        var copied = 0
        while copied < size {
            let n = copyFileRange(src, nil, dst, nil, min(chunk, size - copied), 0)
            if n < 0 {
                let code = errno
                if copied == 0, [EXDEV, ENOSYS, EOPNOTSUPP, EINVAL, EBADF].contains(code) { return nil }
                throw FileOps.fail(destination, "copy_file_range failed after \(copied) bytes", code)
            }
            if n == 0 { break }  // the source shrank: nothing more to copy
            copied += n
            if let crashPoint { CrashPoint.reached(crashPoint) }
        }
        return .copyFileRange
    }

    private static func readWrite(_ src: Int32, _ dst: Int32, source: String, destination: String, crashPoint: String?) throws {
        guard lseek(src, 0, SEEK_SET) == 0, ftruncate(dst, 0) == 0, lseek(dst, 0, SEEK_SET) == 0 else {
            throw FileOps.fail(destination, "cannot rewind for copying")
        }
        let size = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        defer { buffer.deallocate() }
        while true {
            let n = read(src, buffer, size)
            if n == 0 { break }
            guard n > 0 else { throw FileOps.fail(source, "read failed while copying") }
            var written = 0
            while written < n {
                let w = write(dst, buffer + written, n - written)
                guard w > 0 else { throw FileOps.fail(destination, "write failed while copying") }
                written += w
            }
            if let crashPoint { CrashPoint.reached(crashPoint) }
        }
    }
}
