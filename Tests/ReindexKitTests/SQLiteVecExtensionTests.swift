import Foundation
import Testing
@testable import ReindexKit

struct SQLiteVecExtensionTests {
    @Test func aNamedExtensionThatDoesNotExistIsAUsageError() {
        #expect(throws: ReindexError.self) {
            _ = try SQLiteVecExtension.locate(explicit: "/nonexistent/vec0.so", environment: [:])
        }
        #expect(throws: ReindexError.self) {
            _ = try SQLiteVecExtension.locate(explicit: nil, environment: ["SQLITE_VEC_PATH": "/nonexistent/vec0"])
        }
    }

    /// fixtures/setup.sh (`make setup`) installs the `sqlite-vec` Python package
    /// wherever the tests run, so a missing package is a failure, not a pass.
    @Test func thePythonPackageIsFoundWhenInstalled() throws {
        let environment = ProcessInfo.processInfo.environment
        let python = environment["PYTHON"] ?? "python3"
        let installed = try Self.pythonSays(python, "import sqlite_vec; print(sqlite_vec.loadable_path())")
        let loadable = try #require(installed, "`\(python) -c 'import sqlite_vec'` failed: run ./fixtures/setup.sh (make setup) to install sqlite-vec")
        // No --sqlite-vec, no SQLITE_VEC_PATH: only the Python package can be found.
        var withoutOverride = environment
        withoutOverride["SQLITE_VEC_PATH"] = nil
        let found = try #require(try SQLiteVecExtension.locate(explicit: nil, environment: withoutOverride),
                                 "the package is installed (\(loadable)) but locate() did not find it")
        #expect(found.origin == "python package")
        #expect(FileManager.default.fileExists(atPath: found.path))
        // The package's own library (site-packages/sqlite_vec/vec0.so or .dylib), whichever interpreter's it is.
        #expect(found.path.contains("/sqlite_vec/vec0"), "\(found.path) (Python loads \(loadable))")
    }

    /// stdout of `python -c code`, trimmed; nil when Python exits non-zero.
    static func pythonSays(_ python: String, _ code: String) throws -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, "-c", code]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
