import Foundation
import Testing

@testable import FHIRBulk

/// Where the token may go (C12, issue 11 item 1): one check in the HTTP layer, a test per path.
/// "Another origin" is a second mock on 127.0.0.2, which must never see an Authorization header.
@Suite struct TokenPolicyTests {
  /// A provider whose token endpoint lives on `tokenURL`.
  struct ProviderWithEndpoint: AccessTokenProvider {
    var tokenURL: String
    func token(forceRenew: Bool) async throws -> String { "secret-token" }
    var tokenEndpoint: String? { tokenURL }
  }

  func expectRefused(_ error: any Error, host: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let e = error as? BulkError else {
      Issue.record("expected a BulkError, got \(error)", sourceLocation: sourceLocation)
      return
    }
    var refused = e
    if case .downloadsFailed(_, _, let first) = e { refused = first }
    guard case .tokenOriginRefused(_, let h, _) = refused else {
      Issue.record("expected tokenOriginRefused, got \(e)", sourceLocation: sourceLocation)
      return
    }
    #expect(h == host, sourceLocation: sourceLocation)
    #expect(e.failureClass == .policy && !e.isResumable, sourceLocation: sourceLocation)
    #expect(e.description.contains(host) && !e.description.contains("\n"), sourceLocation: sourceLocation)
  }

  func noTokenAt(_ other: MockServer, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(other.requests().allSatisfy { $0.header("Authorization") == nil }, sourceLocation: sourceLocation)
  }

  @Test func statusURLOnAnotherOriginIsRefusedForPollsAndDelete() async throws {
    let s = try await MockServer.start()
    let other = try await MockServer.start(host: "127.0.0.2")
    defer { Task { await s.stop(); await other.stop() } }
    s.on("GET", "/fhir/$export", respond: .status(202, [("Content-Location", other.base + "/status/1")]))
    other.on("GET", "/status/1", respond: .json(200, manifestJSON(s.base, output: [])))
    other.on("DELETE", "/status/1", respond: .status(202))
    let client = makeClient(s)
    let status = try await client.kickoff(level: .system, parameters: ExportParameters())
    do {
      _ = try await client.waitForManifest(statusURL: status)
      Issue.record("expected refusal")
    } catch { expectRefused(error, host: "127.0.0.2:\(other.port)") }
    do {
      try await client.delete(statusURL: status)
      Issue.record("expected refusal")
    } catch { expectRefused(error, host: "127.0.0.2:\(other.port)") }
    #expect(other.requests().isEmpty)
  }

  @Test func manifestNextPageOnAnotherOriginIsRefused() async throws {
    let s = try await MockServer.start()
    let other = try await MockServer.start(host: "127.0.0.2")
    defer { Task { await s.stop(); await other.stop() } }
    s.on("GET", "/status/p", respond: .json(200, manifestJSON(s.base, output: [], next: other.base + "/page/2")))
    other.on("GET", "/page/2", respond: .json(200, manifestJSON(s.base, output: [])))
    do {
      _ = try await makeClient(s).waitForManifest(statusURL: s.base + "/status/p")
      Issue.record("expected refusal")
    } catch { expectRefused(error, host: "127.0.0.2:\(other.port)") }
    #expect(other.requests().isEmpty)
  }

  @Test func filesOnAnotherOriginAreRefusedBeforeAnyDownload() async throws {
    let s = try await MockServer.start()
    let other = try await MockServer.start(host: "127.0.0.2")
    defer { Task { await s.stop(); await other.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    s.on("GET", "/files/1", respond: .ndjson(patients(1)))
    other.on("GET", "/files/2", respond: .ndjson(patients(1)))
    let m = try Manifest.parse(
      Data(manifestJSON(s.base, output: [("Patient", s.base + "/files/1", 1), ("Patient", other.base + "/files/2", 1)]).utf8))
    do {
      try await makeClient(s).downloadAll(m, into: dir.path, statusURL: nil)
      Issue.record("expected refusal")
    } catch { expectRefused(error, host: "127.0.0.2:\(other.port)") }
    #expect(other.requests().isEmpty && s.requests().isEmpty)
  }

  @Test func refreshedLinkOnAnotherOriginIsRefused() async throws {
    let s = try await MockServer.start()
    let other = try await MockServer.start(host: "127.0.0.2")
    defer { Task { await s.stop(); await other.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    s.on("GET", "/files/old", respond: .outcome(410, code: "expired", diagnostics: "file_expired"))
    s.on("GET", "/status/1", respond: .json(200, manifestJSON(s.base, output: [("Patient", other.base + "/files/new", 2)])))
    other.on("GET", "/files/new", respond: .ndjson(patients(2)))
    let m = try Manifest.parse(Data(manifestJSON(s.base, output: [("Patient", s.base + "/files/old", 2)]).utf8))
    do {
      try await makeClient(s).downloadAll(m, into: dir.path, statusURL: s.base + "/status/1")
      Issue.record("expected refusal")
    } catch { expectRefused(error, host: "127.0.0.2:\(other.port)") }
    #expect(other.requests().isEmpty)
    #expect(s.requests(path: "/status/1").count == 1)
  }

  @Test func joinersPostKickoffCarriesTheTokenToTheServerOnly() async throws {
    let s = try await MockServer.start()
    let other = try await MockServer.start(host: "127.0.0.2")
    defer { Task { await s.stop(); await other.stop() } }
    s.on("POST", "/fhir/Group/g1/$export", respond: .status(202, [("Content-Location", other.base + "/status/j")]))
    other.on("GET", "/status/j", respond: .json(200, manifestJSON(s.base, output: [])))
    let client = makeClient(s, method: .post)
    let status = try await client.kickoff(
      level: .group("g1"), parameters: ExportParameters(types: ["Patient"], patients: ["Patient/1"]))
    #expect(s.requests("POST").first?.header("Authorization") == "Bearer secret-token")
    do {
      _ = try await client.waitForManifest(statusURL: status)
      Issue.record("expected refusal")
    } catch { expectRefused(error, host: "127.0.0.2:\(other.port)") }
    noTokenAt(other)
    #expect(other.requests().isEmpty)
  }

  @Test func c46_crossOriginRedirectDropsAuthorization() async throws {
    let s = try await MockServer.start()
    let other = try await MockServer.start(host: "127.0.0.2")
    defer { Task { await s.stop(); await other.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    s.on("GET", "/files/r", respond: .status(307, [("Location", other.base + "/bucket/obj?sig=1")]))
    s.on("GET", "/status/r", respond: .status(302, [("Location", other.base + "/status/moved")]))
    other.on("GET", "/bucket/obj", respond: .ndjson(patients(2)))
    other.on("GET", "/status/moved", respond: .json(200, manifestJSON(s.base, output: [])))
    let m = try Manifest.parse(Data(manifestJSON(s.base, output: [("Patient", s.base + "/files/r", 2)]).utf8))
    let client = makeClient(s)
    try await client.downloadAll(m, into: dir.path, statusURL: nil)
    _ = try await client.waitForManifest(statusURL: s.base + "/status/r")
    #expect(s.requests(path: "/files/r").first?.header("Authorization") == "Bearer secret-token")
    #expect(other.requests().count == 2)
    noTokenAt(other)
  }

  @Test func allowedOriginsAndTheTokenEndpointOriginReceiveTheToken() async throws {
    let s = try await MockServer.start()
    let other = try await MockServer.start(host: "127.0.0.2")
    defer { Task { await s.stop(); await other.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    other.on("GET", "/files/2", respond: .ndjson(patients(1)))
    other.on("GET", "/status/2", respond: .json(200, manifestJSON(s.base, output: [])))
    let m = try Manifest.parse(Data(manifestJSON(s.base, output: [("Patient", other.base + "/files/2", 1)]).utf8))
    try await makeClient(s, allowedOrigins: ["127.0.0.2:\(other.port)"]).downloadAll(m, into: dir.path, statusURL: nil)
    #expect(other.requests(path: "/files/2").first?.header("Authorization") == "Bearer secret-token")

    let viaTokenEndpoint = makeClient(s, auth: ProviderWithEndpoint(tokenURL: other.base + "/auth/token"))
    _ = try await viaTokenEndpoint.waitForManifest(statusURL: other.base + "/status/2")
    #expect(other.requests(path: "/status/2").first?.header("Authorization") == "Bearer secret-token")
  }

  @Test func c43_filesWithoutRequiresAccessTokenMayLiveAnywhere() async throws {
    let s = try await MockServer.start()
    let other = try await MockServer.start(host: "127.0.0.2")
    defer { Task { await s.stop(); await other.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    other.on("GET", "/signed/1", respond: .ndjson(patients(1)))
    let m = try Manifest.parse(
      Data(manifestJSON(s.base, output: [("Patient", other.base + "/signed/1", 1)], requiresAccessToken: false).utf8))
    try await makeClient(s).downloadAll(m, into: dir.path, statusURL: nil)
    #expect(other.requests().count == 1)
    noTokenAt(other)
  }

  @Test func policyUnit() {
    let p = TokenOriginPolicy(
      baseURL: "https://fhir.example.org/r4", allowedOrigins: ["files.example.org", "https://cdn.example.org:8443"],
      tokenEndpoint: "https://auth.example.org/token")
    #expect(p.allows("https://fhir.example.org/r4/$export-poll/1"))
    #expect(p.allows("https://auth.example.org/anything"))
    #expect(p.allows("https://files.example.org/x"))
    #expect(p.allows("https://cdn.example.org:8443/x"))
    #expect(!p.allows("https://cdn.example.org/x"))
    #expect(!p.allows("http://fhir.example.org/r4"))
    #expect(!p.allows("https://evil.example.com/r4"))
  }
}
