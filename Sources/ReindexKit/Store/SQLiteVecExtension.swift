import Foundation
import GRDB

/// sqlite-vec's loadable extension (`vec0.so`): where it is and how it gets
/// into one connection. GRDB links the system SQLite, which allows loading
/// extensions through the C API only; the switch is turned on for the one
/// call and off again, so SQL can never call `load_extension()`.
public struct SQLiteVecExtension: Sendable, Equatable {
    /// The shared library as found on disk.
    public let path: String
    /// Where the path came from, for logs and notes (`--sqlite-vec`, `SQLITE_VEC_PATH`, `python package`).
    public let origin: String

    public init(path: String, origin: String) {
        self.path = path
        self.origin = origin
    }

    /// Finds the extension: `--sqlite-vec`, else `SQLITE_VEC_PATH`, else the
    /// `sqlite-vec` Python package (`make setup` installs it). A path the user
    /// named must exist (usage error otherwise); nil when nothing was found.
    public static func locate(explicit: String?, environment: [String: String]) throws -> SQLiteVecExtension? {
        if let explicit, !explicit.isEmpty {
            guard let file = existingLibrary(explicit) else {
                throw ReindexError.usage("--sqlite-vec \(explicit): no such file — pass the path of sqlite-vec's vec0.so (pip install sqlite-vec==0.1.9 ships one)")
            }
            return SQLiteVecExtension(path: file, origin: "--sqlite-vec")
        }
        if let env = environment["SQLITE_VEC_PATH"], !env.isEmpty {
            guard let file = existingLibrary(env) else {
                throw ReindexError.usage("SQLITE_VEC_PATH=\(env): no such file — point it at sqlite-vec's vec0.so or unset it")
            }
            return SQLiteVecExtension(path: file, origin: "SQLITE_VEC_PATH")
        }
        if let file = pythonPackage(environment: environment) {
            return SQLiteVecExtension(path: file, origin: "python package")
        }
        return nil
    }

    /// `path`, or `path` plus the platform suffix SQLite itself would try.
    static func existingLibrary(_ path: String) -> String? {
        let absolute = JobConfig.absolute(path, relativeTo: FileManager.default.currentDirectoryPath)
        for candidate in [absolute, absolute + ".so", absolute + ".dylib"] {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDir), !isDir.boolValue { return candidate }
        }
        return nil
    }

    /// The Python package's `vec0.so`: site-packages directories are globbed
    /// first (a few `stat`s); asking `python3` (~50 ms) is the fallback for
    /// layouts the glob does not know.
    static func pythonPackage(environment: [String: String]) -> String? {
        for dir in siteDirectories(environment: environment) {
            if let file = existingLibrary(dir + "/sqlite_vec/vec0") { return file }
        }
        return askPython(environment: environment)
    }

    static func siteDirectories(environment: [String: String]) -> [String] {
        let fm = FileManager.default
        var roots: [String] = []
        if let venv = environment["VIRTUAL_ENV"] { roots.append(venv + "/lib") }
        let home = environment["HOME"] ?? NSHomeDirectory()
        let pyenv = environment["PYENV_ROOT"] ?? home + "/.pyenv"
        if let versions = try? fm.contentsOfDirectory(atPath: pyenv + "/versions") {
            roots += versions.sorted().reversed().map { pyenv + "/versions/\($0)/lib" }
        }
        roots += [home + "/.local/lib", "/usr/local/lib", "/usr/lib", "/opt/homebrew/lib"]
        var out: [String] = []
        for root in roots {
            guard let names = try? fm.contentsOfDirectory(atPath: root) else { continue }
            for name in names.sorted().reversed() where name.hasPrefix("python3") {
                out.append("\(root)/\(name)/site-packages")
                out.append("\(root)/\(name)/dist-packages")
            }
        }
        out.append("/usr/lib/python3/dist-packages")
        return out
    }

    static func askPython(environment: [String: String]) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [environment["PYTHON"] ?? "python3", "-c", "import sqlite_vec; print(sqlite_vec.loadable_path())"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : existingLibrary(text)
    }

    /// Loads the extension into `db`'s connection and returns `vec_version()`.
    @discardableResult
    public func load(into db: Database) throws -> String {
        if let detail = try SQLiteC.loadExtension(db, path: path) {
            throw ReindexError.usage("sqlite-vec \(path) (from \(origin)) failed to load: \(detail) — install a build for this platform (pip install sqlite-vec==0.1.9) or pass another --sqlite-vec, or use `index: none`")
        }
        return try String.fetchOne(db, sql: "SELECT vec_version()") ?? "?"
    }
}
