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

    @Test func thePythonPackageIsFoundWhenInstalled() throws {
        // `make setup` installs sqlite-vec; without it there is nothing to find.
        guard let found = try SQLiteVecExtension.locate(explicit: nil, environment: ProcessInfo.processInfo.environment) else { return }
        #expect(FileManager.default.fileExists(atPath: found.path))
        #expect(found.path.contains("sqlite_vec") || found.origin != "python package")
    }
}
