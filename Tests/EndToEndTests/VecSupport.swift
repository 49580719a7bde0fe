import Foundation
import Testing

/// Helpers for the sqlite-vec tests: the extension's path and an
/// application-side client (fixtures/vec_query.py under Debian's python3,
/// whose sqlite3 module can load extensions).
enum Vec {
    static let systemPython = "/usr/bin/python3"

    /// vec0.so of the sqlite-vec Python package that `make setup` installs.
    static let extensionPath: String? = {
        guard let r = try? E2E.run(E2E.python, ["-c", "import sqlite_vec; print(sqlite_vec.loadable_path())"]), r.status == 0 else { return nil }
        let path = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return FileManager.default.fileExists(atPath: path + ".so") || FileManager.default.fileExists(atPath: path) ? path : nil
    }()

    static var available: Bool { extensionPath != nil && FileManager.default.isExecutableFile(atPath: systemPython) }

    /// Why a test that needs sqlite-vec fails without it: the test environment always
    /// installs it, so its absence is a broken set-up, not a reason to skip.
    static let missing: Comment = "needs the sqlite-vec Python package and /usr/bin/python3: run ./fixtures/setup.sh (make setup)"

    /// An environment in which the binary cannot discover sqlite-vec by itself.
    static func hiddenExtensionEnv(_ dir: URL) -> [String: String] {
        ["HOME": dir.path, "PYENV_ROOT": dir.appendingPathComponent("no-pyenv").path,
         "PYTHON": dir.appendingPathComponent("no-python").path, "VIRTUAL_ENV": dir.appendingPathComponent("no-venv").path,
         "SQLITE_VEC_PATH": ""]
    }

    /// Runs SQL as an application would; `ext: false` reads without the extension.
    static func sql(_ db: URL, _ sql: String, ext: Bool = true, write: Bool = false) throws -> [String: Any] {
        var args = [E2E.root.appendingPathComponent("fixtures/vec_query.py").path, "--db", db.path, "--sql", sql]
        if ext, let path = extensionPath { args += ["--ext", path] }
        if write { args.append("--write") }
        let r = try E2E.run(systemPython, args)
        guard r.status == 0 else { throw E2E.Failure("vec_query.py failed: \(r.stderr)") }
        return try E2E.json(r.stdout)
    }

    static func int(_ db: URL, _ query: String) throws -> Int? {
        let out = try sql(db, query)
        if let error = out["error"] { throw E2E.Failure("\(query): \(error)") }
        return ((out["rows"] as? [[Any]])?.first?.first as? NSNumber)?.intValue
    }

    /// KNN through vec0 for each query vector: (rowid, distance) best first.
    static func knn(_ db: URL, queries: [[Float]], k: Int, dir: URL) throws -> [[(Int64, Double)]] {
        let file = dir.appendingPathComponent("queries-\(UUID().uuidString.prefix(6)).json")
        try JSONSerialization.data(withJSONObject: queries.map { $0.map(Double.init) }).write(to: file)
        let r = try E2E.run(systemPython, [E2E.root.appendingPathComponent("fixtures/vec_query.py").path, "--db", db.path,
                                           "--ext", extensionPath!, "--knn", file.path, "--k", String(k)])
        guard r.status == 0 else { throw E2E.Failure("vec_query.py failed: \(r.stderr)") }
        let out = try E2E.json(r.stdout)
        if let error = out["error"] { throw E2E.Failure("knn: \(error)") }
        return (out["knn"] as? [[[Any]]] ?? []).map { rows in
            rows.map { (($0[0] as! NSNumber).int64Value, ($0[1] as! NSNumber).doubleValue) }
        }
    }

    static func size(_ url: URL) -> Int {
        (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
    }
}
