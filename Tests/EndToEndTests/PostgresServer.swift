import Foundation

/// A throwaway PostgreSQL server for one test (issue 16): Debian's
/// `postgresql` package (installed by `make setup`), `initdb` into a private
/// temporary directory as the `postgres` user (initdb refuses root), a Unix
/// socket in that directory only (`listen_addresses=''`), password
/// authentication (scram-sha-256), a database `app`. `stop()` runs
/// `pg_ctl stop -m fast` and removes the directory.
///
/// When the binaries are missing or the server does not start, `start()`
/// throws a clear failure: the PostgreSQL tests fail, never pass silently,
/// unless `REINDEX_SKIP_POSTGRES=1` turns them off (see `PostgresTests`).
final class PostgresServer: @unchecked Sendable {
    /// The superuser's password, given to clients through PGPASSWORD only.
    static let password = "fixture-pg-secret"
    static let port = 5432

    let dir: URL
    let bin: URL
    private var running = false

    /// The newest /usr/lib/postgresql/<version>/bin that has initdb.
    static func binDirectory() -> URL? {
        let base = URL(fileURLWithPath: "/usr/lib/postgresql")
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: base.path)) ?? []).compactMap(Int.init).sorted()
        for v in versions.reversed() {
            let bin = base.appendingPathComponent("\(v)/bin")
            if FileManager.default.isExecutableFile(atPath: bin.appendingPathComponent("initdb").path) { return bin }
        }
        return nil
    }

    init() throws {
        guard let bin = Self.binDirectory() else {
            throw E2E.Failure("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb) — run `make setup` (apt: postgresql), or set REINDEX_SKIP_POSTGRES=1 to skip these tests")
        }
        self.bin = bin
        let template = "/tmp/reindex-pg.XXXXXX"
        var chars = Array(template.utf8CString)
        guard let made = mkdtemp(&chars) else { throw E2E.Failure("mkdtemp failed: \(errno)") }
        dir = URL(fileURLWithPath: String(cString: made))
        do {
            try start()
        } catch {
            stop()
            throw error
        }
    }

    deinit { stop() }

    /// Runs a PostgreSQL server binary as the `postgres` user when we are root.
    /// Through a Python `subprocess.run(close_fds=True)`: Foundation's `Process` on Linux
    /// sees its child as running while any descendant holds the fd it watches, and the
    /// postmaster that `pg_ctl start` leaves behind would hold it for the whole test.
    private func asPostgres(_ tool: String, _ args: [String]) throws -> E2E.Result {
        let path = bin.appendingPathComponent(tool).path
        let command = getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--", path] + args : [path] + args
        return try E2E.run(E2E.python, ["-c", "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:], close_fds=True).returncode)"] + command,
                           timeout: 120)
    }

    private func start() throws {
        let pwfile = dir.appendingPathComponent("pwfile")
        try Self.password.write(to: pwfile, atomically: true, encoding: .utf8)
        if getuid() == 0 {
            let r = try E2E.run("/bin/chown", ["-R", "postgres", dir.path])
            guard r.status == 0 else { throw E2E.Failure("chown postgres \(dir.path) failed: \(r.stderr)") }
        }
        let data = dir.appendingPathComponent("data").path
        var r = try asPostgres("initdb", ["-D", data, "-U", "postgres", "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
                                          "--pwfile=\(pwfile.path)", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
        guard r.status == 0 else { throw E2E.Failure("initdb failed (\(r.status)): \(r.stderr)") }
        r = try asPostgres("pg_ctl", ["-D", data, "-o", "-k \(dir.path) -c listen_addresses='' -p \(Self.port) -c fsync=off",
                                      "-l", dir.appendingPathComponent("server.log").path, "-w", "-t", "60", "start"])
        let log = (try? String(contentsOf: dir.appendingPathComponent("server.log"), encoding: .utf8)) ?? ""
        guard r.status == 0 else { throw E2E.Failure("pg_ctl start failed (\(r.status)): \(r.stderr) \(r.stdout)\n\(log)") }
        running = true
        try E2E.wait("the PostgreSQL socket", timeout: 30) {
            FileManager.default.fileExists(atPath: dir.appendingPathComponent(".s.PGSQL.\(Self.port)").path)
        }
        try psql("CREATE DATABASE app", database: "postgres")
    }

    /// `pg_ctl stop -m fast`, then the directory goes; safe to call twice.
    func stop() {
        if running {
            _ = try? asPostgres("pg_ctl", ["-D", dir.appendingPathComponent("data").path, "-m", "fast", "-w", "stop"])
            running = false
        }
        try? FileManager.default.removeItem(at: dir)
    }

    /// Connection arguments for psql and pg_load.py.
    func psqlArgs(_ database: String = "app") -> [String] {
        ["-h", dir.path, "-p", String(Self.port), "-U", "postgres", "-d", database]
    }

    /// The libpq URI for `primary:` — no password in it.
    func uri(_ database: String = "app", user: String = "postgres", password: String? = nil) -> String {
        "postgresql://\(user)\(password.map { ":\($0)" } ?? "")@/\(database)?host=\(dir.path)&port=\(Self.port)"
    }

    /// The environment a client needs (the password only here).
    var env: [String: String] { ["PGPASSWORD": Self.password] }

    /// Runs SQL through psql; returns its unaligned, tuples-only output.
    @discardableResult
    func psql(_ sql: String, database: String = "app", timeout: Double = 300) throws -> String {
        let r = try E2E.run(bin.appendingPathComponent("psql").path, ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"] + psqlArgs(database) + ["-c", sql],
                            env: env, timeout: timeout)
        guard r.status == 0 else { throw E2E.Failure("psql failed (\(r.status)): \(r.stderr)") }
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// psql in the background (a sampler, a writer); read its output after `waitUntilExit`.
    /// Each element of `sql` is its own `-c` (its own transaction).
    func spawnPsql(_ sql: [String], output: URL) throws -> Process {
        let p = Process()
        p.executableURL = bin.appendingPathComponent("psql")
        p.arguments = ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"] + psqlArgs() + sql.flatMap { ["-c", $0] }
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        return p
    }

    /// Copies an SQLite primary into `app` with fixtures/pg_load.py.
    func load(_ sqlite: URL) throws {
        let r = try E2E.run(E2E.python, [E2E.root.appendingPathComponent("fixtures/pg_load.py").path, "--sqlite", sqlite.path,
                                         "--psql", bin.appendingPathComponent("psql").path, "--"] + psqlArgs(), env: env)
        guard r.status == 0 else { throw E2E.Failure("pg_load.py failed (\(r.status)): \(r.stderr)") }
    }
}
