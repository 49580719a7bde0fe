import Foundation
import GRDB
import Testing

/// Issue 18, DESIGN.md invariant 9: derived files are never more readable
/// than the primary. Runs go through `/bin/sh -c 'umask 022; exec reindex …'`,
/// so a file created with the default 0644 would show it.
@Suite("Least privilege for derived files", .serialized)
struct PermissionsTests {
    static func mode(_ url: URL) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        return (attributes[.posixPermissions] as? Int ?? -1) & 0o7777
    }

    static func group(_ url: URL) throws -> Int {
        try FileManager.default.attributesOfItem(atPath: url.path)[.groupOwnerAccountID] as? Int ?? -1
    }

    /// `reindex --job <job> args…` under `umask <mask>`.
    static func run(_ h: Harness, _ args: [String], umask mask: String = "022", env: [String: String] = [:], job: URL? = nil) throws -> E2E.Result {
        try E2E.run("/bin/sh", ["-c", "umask \(mask); exec \"$0\" \"$@\"", E2E.binary, "--job", (job ?? h.job).path] + args, env: env, timeout: 300)
    }

    static func octal(_ mode: Int) -> String { "0" + String(mode, radix: 8) }

    @Test("a 0600 primary under umask 022: the work file and its sidecars, the output, .prev and the lock are 0600")
    func privatePrimary() throws {
        let h = try Harness(primary: .init(messages: 400, knowledge: 10), job: .init(model: ["batch-size": "16"]))
        defer { h.cleanup() }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: h.primary.path)

        let crashed = try Self.run(h, ["--full"], env: ["REINDEX_CRASH_AT": "batch:1"])
        #expect(crashed.status == 137 || crashed.status == 9, "expected SIGKILL at batch:1: \(crashed.stderr)")
        #expect(FileManager.default.fileExists(atPath: h.work.path), "the crashed run left its work file")
        #expect(try Self.octal(Self.mode(h.work)) == "0600")
        // SQLite gives -wal and -shm the main file's mode (local disk: the build runs in WAL mode).
        for suffix in ["-wal", "-shm"] {
            let sidecar = URL(fileURLWithPath: h.work.path + suffix)
            if FileManager.default.fileExists(atPath: sidecar.path) {
                #expect(try Self.octal(Self.mode(sidecar)) == "0600", "\(sidecar.lastPathComponent)")
            }
        }
        #expect(try Self.octal(Self.mode(h.lock)) == "0600")

        let resumed = try Self.run(h, [])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try Self.octal(Self.mode(h.output)) == "0600")

        try h.mutate(["--insert", "3", "--update", "2"])
        let second = try Self.run(h, [])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(FileManager.default.fileExists(atPath: h.prev.path))
        #expect(try Self.octal(Self.mode(h.output)) == "0600")
        #expect(try Self.octal(Self.mode(h.prev)) == "0600")
        #expect(try h.outListing().filter { $0.contains(".work") }.isEmpty)
    }

    @Test("built in a work directory and copied beside the output: the copy and the local work file are 0600 too")
    func copiedBuild() throws {
        let h = try Harness(primary: .init(messages: 300, knowledge: 10), job: .init(model: ["batch-size": "16"]))
        defer { h.cleanup() }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: h.primary.path)
        let workDir = h.dir.appendingPathComponent("local-work")
        try FileManager.default.createDirectory(at: workDir, withIntermediateDirectories: true)

        let crashed = try Self.run(h, ["--full", "--work-dir", workDir.path], env: ["REINDEX_CRASH_AT": "batch:1"])
        #expect(crashed.status == 137 || crashed.status == 9, "\(crashed.stderr)")
        let local = try h.listing(workDir).filter { $0.hasSuffix(".work") }
        #expect(local.count == 1, "\(local)")
        for name in local { #expect(try Self.octal(Self.mode(workDir.appendingPathComponent(name))) == "0600", "\(name)") }

        let r = try Self.run(h, ["--full", "--work-dir", workDir.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.octal(Self.mode(h.output)) == "0600")
    }

    @Test("a 0640 primary gives 0640 files; a 0644 primary 0644 (group and others only read)")
    func modeFollowsPrimary() throws {
        let h = try Harness(primary: .init(messages: 100, knowledge: 5))
        defer { h.cleanup() }
        for (primary, expected) in [(0o640, "0640"), (0o664, "0644"), (0o604, "0604")] {
            try FileManager.default.setAttributes([.posixPermissions: primary], ofItemAtPath: h.primary.path)
            let r = try Self.run(h, ["--full"], umask: "000")
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try Self.octal(Self.mode(h.output)) == expected, "primary \(Self.octal(primary))")
            #expect(try Self.group(h.output) == Self.group(h.primary))
        }
    }

    @Test("output-mode: \"0640\" is honoured whatever the primary and the umask")
    func explicitMode() throws {
        let h = try Harness(primary: .init(messages: 100, knowledge: 5), job: .init(extraTop: "output-mode: \"0640\"\n"))
        defer { h.cleanup() }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: h.primary.path)
        let r = try Self.run(h, ["--full"], umask: "077")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.octal(Self.mode(h.output)) == "0640")

        let bad = try h.writeJob("bad.yml", extraTop: "output-mode: \"0666\"\n")
        let refused = try Self.run(h, ["--full"], job: bad)
        #expect(refused.status == 64, "\(refused.stderr)")
        #expect(refused.stderr.contains("output-mode"), "\(refused.stderr)")
    }

    @Test("doctor and verify warn when the published file is more readable than the primary, and only then")
    func warnings() throws {
        let h = try Harness(primary: .init(messages: 100, knowledge: 5))
        defer { h.cleanup() }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: h.primary.path)
        #expect(try Self.run(h, ["--full"]).status == 0)

        let quietVerify = try h.command("verify")
        #expect(quietVerify.status == 0, "\(quietVerify.stderr)")
        #expect(!quietVerify.stdout.contains("permissions:"), "\(quietVerify.stdout)")
        let quietDoctor = try h.command("doctor")
        #expect(!quietDoctor.stdout.contains("WARNING"), "\(quietDoctor.stdout)")

        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: h.output.path)
        let verify = try h.command("verify")
        #expect(verify.status == 0, "a warning, not an inconsistency: \(verify.stderr)")
        #expect(verify.stdout.contains("permissions:") && verify.stdout.contains("readable by group and others"), "\(verify.stdout)")
        let doctor = try h.command("doctor")
        #expect(doctor.status == 0)
        #expect(doctor.stdout.contains("permissions: WARNING") && doctor.stdout.contains("(mode 0644)"), "\(doctor.stdout)")
    }

    @Test("staging is an anonymous SQLite temp file: created 0600 and never given a name")
    func stagingTempFile() throws {
        let q = try DatabaseQueue()
        defer { try? q.close() }
        try q.writeWithoutTransaction { db in
            // What StagingArea.attach does, with a tiny cache so the temp database spills to disk at once.
            try db.execute(sql: "ATTACH DATABASE '' AS scan; PRAGMA scan.journal_mode = OFF; PRAGMA scan.cache_size = 4")
            try db.execute(sql: "CREATE TABLE scan.rows(source TEXT, source_id TEXT, input TEXT)")
            for i in 0..<2000 {
                try db.execute(sql: "INSERT INTO scan.rows VALUES ('message', ?, ?)", arguments: ["\(i)", String(repeating: "x", count: 500)])
            }
        }
        // The spilled file is open in this process, unlinked: /proc/self/fd shows it as "(deleted)".
        let fds = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")
        var modes: [String: Int] = [:]
        for fd in fds {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)"),
                  target.contains("etilqs_") else { continue }
            #expect(target.hasSuffix("(deleted)"), "an unnamed temp file: \(target)")
            var st = stat()
            if stat("/proc/self/fd/\(fd)", &st) == 0 { modes[target] = Int(st.st_mode) & 0o777 }
        }
        #expect(!modes.isEmpty, "the staging database spilled to a temp file")
        for (target, mode) in modes { #expect(mode == 0o600, "\(target): \(Self.octal(mode))") }
    }
}
