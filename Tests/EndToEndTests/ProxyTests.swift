import Foundation
import Testing

/// HTTP(S)_PROXY and NO_PROXY are honoured (libcurl's environment handling),
/// and TLS is verified: a server that does not speak valid TLS is an error.
@Suite(.serialized) struct ProxyTests {
    func startProxy(_ dir: URL) throws -> (Process, String, URL) {
        let portFile = dir.appendingPathComponent("proxy-url"), log = dir.appendingPathComponent("proxy.log")
        let p = try E2E.spawn("/usr/bin/env", [E2E.python, E2E.root.appendingPathComponent("fixtures/connect_proxy.py").path,
                                               "--port-file", portFile.path, "--log", log.path])
        try E2E.wait("the proxy", timeout: 60) { FileManager.default.fileExists(atPath: portFile.path) }
        let url = try String(contentsOf: portFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return (p, url, log)
    }

    @Test func proxiesFromTheEnvironmentAreUsedAndNoProxyBypassesThem() throws {
        let h = try Harness(primary: .init(messages: 100, knowledge: 5))
        defer { h.cleanup() }
        let server = h.server
        let (proxy, proxyURL, log) = try startProxy(h.dir)
        defer { kill(proxy.processIdentifier, SIGKILL); proxy.waitUntilExit() }
        let port = server.url.split(separator: ":").last!

        // Plain HTTP through http_proxy: the run works and every request went through the proxy.
        let r = try h.runJob(["--full"], env: ["http_proxy": proxyURL, "NO_PROXY": "", "no_proxy": ""])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("POST http://127.0.0.1:\(port)/v1/embeddings") })

        // HTTPS through HTTPS_PROXY: a CONNECT tunnel is asked for; the far end is not TLS, so the
        // handshake fails and the run stops with exit 69 (certificates are never skipped).
        try Data().write(to: log)
        let tls = try h.writeJob("tls.yml", model: ["max-retries": "1"], url: "https://127.0.0.1:\(port)")
        let t = try h.runJob(["--full"], job: tls, env: ["HTTPS_PROXY": proxyURL, "NO_PROXY": "", "no_proxy": ""])
        #expect(t.status == 69, "\(t.stderr)")
        #expect(try String(contentsOf: log, encoding: .utf8).contains("CONNECT 127.0.0.1:\(port)"))

        // NO_PROXY bypasses the proxy.
        try Data().write(to: log)
        let direct = try h.runJob(["--full", "--restart"], env: ["http_proxy": proxyURL, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"])
        #expect(direct.status == 0)
        #expect(try String(contentsOf: log, encoding: .utf8).isEmpty)
    }
}
