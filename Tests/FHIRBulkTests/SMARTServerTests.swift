// SMART Backend Services against the embedded BulkServer (an independent verifier: it never
// imports FHIRBulk) and the scriptable mock for odd token-endpoint answers (C1, C2, C6, C7, C9–C12).
import BulkServer
import Clocks
import Foundation
import Testing

@testable import FHIRBulk

func smartServer(
  _ clients: [String: SMARTKey], lifetime: Int = 300, patients: Int = 4, allowedScopes: [String]? = nil,
  polls: Int = 1, clock: any Clock<Duration> = ContinuousClock()
) async throws -> BulkDataServer {
  var c = BulkServerConfiguration()
  c.auth = .smart(clients: clients.mapValues { Data($0.publicJWKS().utf8) })
  c.tokenLifetime = lifetime
  c.tokenClock = clock
  c.patients = patients
  c.pollsBeforeComplete = polls
  if let allowedScopes { c.allowedScopes = allowedScopes }
  return try await BulkDataServer.start(c)
}

func tokenPosts(_ server: BulkDataServer) async -> Int {
  await server.requestLog.filter { $0.method == "POST" && $0.path.hasPrefix("/auth/token") }.count
}

/// Hands out the SMART provider's token until a 401 forces a renewal, so that expired tokens
/// really reach the server (the provider alone renews them before they expire).
final class StickyTokens: AccessTokenProvider {
  let inner: SMARTTokenProvider
  private let cached = Locked<String?>(nil)
  init(_ inner: SMARTTokenProvider) { self.inner = inner }
  func token(forceRenew: Bool) async throws -> String {
    if !forceRenew, let t = cached.current { return t }
    let t = try await inner.token(forceRenew: forceRenew)
    cached.withLock { $0 = t }
    return t
  }
}

func smartConfigJSON(token: String, extra: String = #","token_endpoint_auth_methods_supported":["private_key_jwt"],"token_endpoint_auth_signing_alg_values_supported":["RS384","ES384"],"grant_types_supported":["client_credentials"],"capabilities":["client-confidential-asymmetric","permission-v2"]"#) -> String {
  #"{"token_endpoint":"\#(token)"\#(extra)}"#
}

func formFields(_ body: Data) -> [String: String] {
  var out: [String: String] = [:]
  for pair in String(decoding: body, as: UTF8.self).split(separator: "&") {
    let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
    out[kv[0]] = kv.count > 1 ? kv[1] : ""
  }
  return out
}

@Suite struct SMARTServerTests {
  // MARK: discovery

  @Test func c1_discoveryAppendsTheSuffixToABaseWithAPath() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    s.on("GET", "/x/fhir/.well-known/smart-configuration", respond: .json(200, smartConfigJSON(token: s.base + "/oauth/issue")))
    s.on("POST", "/oauth/issue", respond: .json(200, #"{"access_token":"mock-token-1","token_type":"bearer","expires_in":300,"scope":"system/*.rs"}"#))
    let p = SMARTTokenProvider(baseURL: s.base + "/x/fhir/", clientID: "c1", key: SMARTTestKeys.ec.key)
    #expect(try await p.token(forceRenew: false) == "mock-token-1")
    #expect(s.requests("GET").map(\.path) == ["/x/fhir/.well-known/smart-configuration"])
    #expect(s.requests("POST").map(\.path) == ["/oauth/issue"])
    // The assertion's aud is the discovered token URL.
    let post = try #require(s.requests("POST").first)
    let assertion = try #require(formFields(post.body)["client_assertion"])
    #expect(try jwtPart(assertion, 1)["aud"] as? String == s.base + "/oauth/issue")
  }

  @Test func c2_missingFieldsWarnAndRelativeTokenURLResolves() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    s.on("GET", "/fhir/.well-known/smart-configuration", respond: .json(200, smartConfigJSON(token: "auth/token", extra: "")))
    let warnings = Locked<[String]>([])
    let p = SMARTTokenProvider(
      baseURL: s.base + "/fhir", clientID: "c1", key: SMARTTestKeys.ec.key, warn: { w in warnings.withLock { $0.append(w) } })
    let config = try await p.discover()
    #expect(config.tokenURL == s.base + "/fhir/auth/token")
    #expect(config.warnings.count == 4)
    for field in [
      "token_endpoint_auth_methods_supported", "token_endpoint_auth_signing_alg_values_supported", "grant_types_supported", "capabilities",
    ] {
      #expect(config.warnings.contains { $0.contains(field) }, "no warning for \(field)")
    }
    #expect(warnings.current == config.warnings)
    // Present but without what we need: still warnings, with the key's own algorithm named.
    s.on(
      "GET", "/fhir/.well-known/smart-configuration",
      respond: .json(
        200,
        smartConfigJSON(
          token: "/abs/token",
          extra: #","token_endpoint_auth_methods_supported":["client_secret_basic"],"token_endpoint_auth_signing_alg_values_supported":["RS384"],"grant_types_supported":["client_credentials"],"capabilities":["client-confidential-asymmetric"]"#
        )))
    let c2 = try await p.discover()
    #expect(c2.tokenURL == s.base + "/abs/token")
    #expect(c2.warnings.count == 2)
    #expect(c2.warnings.contains { $0.contains("private_key_jwt") })
    #expect(c2.warnings.contains { $0.contains("ES384") })
    // No token_endpoint: a clear discovery error; a 500: too.
    s.on("GET", "/fhir/.well-known/smart-configuration", respond: .json(200, #"{"issuer":"x"}"#))
    await #expect(throws: SMARTError.discovery(url: s.base + "/fhir/.well-known/smart-configuration", reason: "token_endpoint is missing")) {
      _ = try await p.discover()
    }
  }

  @Test func c1_fallsBackToTheCapabilityStatementWhenWellKnownIsMissing() async throws {
    let server = try await smartServer(["client-id": SMARTTestKeys.ec.key])
    defer { Task { await server.stop() } }
    // BulkServer has .well-known; a base path it does not know gives 404 everywhere, so use the mock.
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    s.on(
      "GET", "/fhir/metadata",
      respond: .json(
        200,
        #"{"resourceType":"CapabilityStatement","rest":[{"mode":"server","security":{"extension":[{"url":"http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris","extension":[{"url":"token","valueUri":"\#(server.baseURL)/auth/token"}]}]}}]}"#
      ))
    let p = SMARTTokenProvider(baseURL: s.base + "/fhir", clientID: "client-id", key: SMARTTestKeys.ec.key)
    let config = try await p.discover()
    #expect(config.tokenURL == server.baseURL + "/auth/token")
    #expect(config.warnings.count == 1 && config.warnings[0].contains("HTTP 404"))
  }

  // MARK: token request

  @Test func c6_tokenRequestIsAFormPostWithTheFourFields() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    s.on("GET", "/fhir/.well-known/smart-configuration", respond: .json(200, smartConfigJSON(token: s.base + "/token")))
    s.on("POST", "/token", respond: .json(200, #"{"access_token":"t","token_type":"Bearer","expires_in":300}"#))
    let p = SMARTTokenProvider(baseURL: s.base + "/fhir", clientID: "client 1&2", key: SMARTTestKeys.rsa.key, scope: "system/Patient.rs system/Group.rs")
    _ = try await p.token(forceRenew: false)
    let r = try #require(s.requests("POST").first)
    #expect(r.header("Content-Type") == "application/x-www-form-urlencoded")
    #expect(r.header("Authorization") == nil)
    let f = formFields(r.body)
    #expect(Set(f.keys) == ["grant_type", "scope", "client_assertion_type", "client_assertion"])
    #expect(f["grant_type"] == "client_credentials")
    #expect(f["scope"] == "system/Patient.rs system/Group.rs")
    #expect(f["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    #expect(try jwtPart(f["client_assertion"] ?? "", 1)["iss"] as? String == "client 1&2")
    // C7: an omitted scope in the answer means the requested one was granted; token_type is case-insensitive.
    #expect(await p.grantedScope == "system/Patient.rs system/Group.rs")
  }

  @Test func c6_plainHTTPTokenEndpointsAreRefusedOffLoopback() async throws {
    let p = SMARTTokenProvider(
      baseURL: "http://127.0.0.1:9/fhir", clientID: "c", key: SMARTTestKeys.ec.key, tokenURL: "http://auth.example.invalid/token")
    await #expect(throws: SMARTError.insecureTokenURL("http://auth.example.invalid/token")) { _ = try await p.token(forceRenew: false) }
    #expect(p.tokenRequestCount == 0)
    // The development switch lets it through (0.0.0.0 is not a loopback name, yet reaches the mock).
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    s.on("POST", "/token", respond: .json(200, #"{"access_token":"t","token_type":"bearer","expires_in":300}"#))
    let insecure = "http://0.0.0.0:\(s.port)/token"
    let strict = SMARTTokenProvider(baseURL: s.base, clientID: "c", key: SMARTTestKeys.ec.key, tokenURL: insecure)
    await #expect(throws: SMARTError.insecureTokenURL(insecure)) { _ = try await strict.token(forceRenew: false) }
    let dev = SMARTTokenProvider(baseURL: s.base, clientID: "c", key: SMARTTestKeys.ec.key, tokenURL: insecure, allowInsecureHTTP: true)
    #expect(try await dev.token(forceRenew: false) == "t")
    #expect(s.requests("POST").count == 1)
  }

  @Test func c7_tokenResponsesAreChecked() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    s.on("GET", "/fhir/.well-known/smart-configuration", respond: .json(200, smartConfigJSON(token: s.base + "/token")))
    let cases: [(String, String)] = [
      (#"{"token_type":"bearer","expires_in":300}"#, "access_token is missing"),
      (#"{"access_token":"t","token_type":"mac","expires_in":300}"#, "not bearer"),
      (#"{"access_token":"t","expires_in":300}"#, "token_type is missing"),
      ("<html>oops</html>", "not a JSON object"),
    ]
    for (body, expected) in cases {
      s.on("POST", "/token", respond: .json(200, body))
      let p = SMARTTokenProvider(baseURL: s.base + "/fhir", clientID: "c", key: SMARTTestKeys.ec.key)
      do {
        _ = try await p.token(forceRenew: false)
        Issue.record("expected failure for \(body)")
      } catch let e as SMARTError {
        #expect(e.description.contains(expected), "\(e)")
      }
    }
  }

  @Test func c7_scopeNotGrantedFailsBeforeKickoff() async throws {
    let key = SMARTTestKeys.ec.key
    let server = try await smartServer(["client-id": key], allowedScopes: ["system/Patient.rs"])
    defer { Task { await server.stop() } }
    let p = SMARTTokenProvider(
      baseURL: server.baseURL, clientID: "client-id", key: key, scope: "system/Patient.rs system/Observation.rs")
    do {
      try await p.checkScopes(covering: ["Patient", "Observation"])
      Issue.record("expected scope not granted")
    } catch let e as SMARTError {
      #expect(e == .scopeNotGranted(types: ["Observation"], granted: "system/Patient.rs"))
      #expect(e.description.hasPrefix("scope not granted"))
    }
    try await p.checkScopes(covering: ["Patient"])
    #expect(await p.grantedScope == "system/Patient.rs")
    #expect(await tokenPosts(server) == 1)
    // No kick-off was sent.
    #expect(await server.requestLog.allSatisfy { !$0.path.contains("$export") })
  }

  @Test func c8_v1ServersGetV1ScopesByDefault() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    s.on(
      "GET", "/fhir/.well-known/smart-configuration",
      respond: .json(200, smartConfigJSON(token: s.base + "/token", extra: #","capabilities":["client-confidential-asymmetric","permission-v1"]"#)))
    s.on("POST", "/token", respond: .json(200, #"{"access_token":"t","token_type":"bearer","expires_in":300,"scope":"system/*.read"}"#))
    let p = SMARTTokenProvider(baseURL: s.base + "/fhir", clientID: "c", key: SMARTTestKeys.ec.key)
    try await p.checkScopes(covering: ["Patient"])
    #expect(formFields(try #require(s.requests("POST").first).body)["scope"] == "system/*.read")
    #expect(p.scopeSent == "system/*.read")
  }

  // MARK: renewal

  @Test func c9_parallelCallersShareOneTokenRequestPerRenewal() async throws {
    let key = SMARTTestKeys.rsa.key
    // Virtual time: the server and the provider measure the 300 s lifetime on one test clock.
    let clock = TestClock()
    let server = try await smartServer(["client-id": key], lifetime: 300, clock: clock)
    defer { Task { await server.stop() } }
    let p = SMARTTokenProvider(baseURL: server.baseURL, clientID: "client-id", key: key, clock: clock)
    func burst() async throws -> Set<String> {
      try await withThrowingTaskGroup(of: String.self) { g in
        for _ in 0..<16 { g.addTask { try await p.token(forceRenew: false) } }
        var out = Set<String>()
        for try await t in g { out.insert(t) }
        return out
      }
    }
    let first = try await burst()
    #expect(first.count == 1)
    #expect(await tokenPosts(server) == 1)
    #expect(try await burst() == first)
    #expect(await tokenPosts(server) == 1)
    // expires_in 300 s: renewed 30 s early (at 270 s), once for all 16 callers.
    await clock.advance(by: .milliseconds(269_900))
    #expect(try await burst() == first)
    #expect(await tokenPosts(server) == 1)
    await clock.advance(by: .milliseconds(200))
    let second = try await burst()
    #expect(second.count == 1 && second != first)
    #expect(await tokenPosts(server) == 2)
    #expect(p.tokenRequestCount == 2)
    // Parallel 401s: the first forced renewal is shared by the others.
    let forced = try await withThrowingTaskGroup(of: String.self) { g in
      for _ in 0..<8 { g.addTask { try await p.token(forceRenew: true) } }
      var out = Set<String>()
      for try await t in g { out.insert(t) }
      return out
    }
    #expect(forced.count == 1 && forced != second)
    #expect(await tokenPosts(server) == 3)
    // Without the renewal, the first token would have been sent after its expiry: the server refuses it.
    await clock.advance(by: .seconds(30))
    let stale = BulkClient(
      endpoint: BulkEndpoint(baseURL: server.baseURL, auth: StaticTokenProvider(try #require(first.first))), pollPolicy: .fast())
    do {
      _ = try await stale.kickoff(level: .system, parameters: ExportParameters(types: ["Patient"]))
      Issue.record("the expired token was accepted")
    } catch let e as BulkError {
      #expect(e.httpStatus == 401 && e.description.contains("expired"), "\(e)")
    }
  }

  @Test func c9_eightParallelDownloadsShareOneRenewalAfter401s() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    s.on("GET", "/fhir/.well-known/smart-configuration", respond: .json(200, smartConfigJSON(token: s.base + "/token")))
    s.on("POST", "/token") { _, n in .json(200, #"{"access_token":"tok-\#(n)","token_type":"bearer","expires_in":300}"#) }
    var output: [(String, String, Int?)] = []
    for i in 1...8 {
      output.append(("Patient", s.base + "/files/\(i)", 2))
      // The first token is refused everywhere (as if it expired early); the renewed one works.
      s.on("GET", "/files/\(i)") { r, _ in
        r.header("Authorization") == "Bearer tok-1" ? .text(401, "token expired") : .ndjson(patients(2))
      }
    }
    let p = SMARTTokenProvider(baseURL: s.base + "/fhir", clientID: "c", key: SMARTTestKeys.ec.key)
    let client = BulkClient(endpoint: BulkEndpoint(baseURL: s.base + "/fhir", auth: p), pollPolicy: .fast(), downloadPolicy: .fast())
    let dir = try TempDir()
    defer { dir.cleanup() }
    let m = try Manifest.parse(Data(manifestJSON(s.base, output: output).utf8))
    let files = try await client.downloadAll(m, into: dir.path, parallel: 8, statusURL: nil)
    #expect(files.count == 8)
    #expect(s.requests("POST", path: "/token").count == 2)
    #expect(s.requests("GET").filter { $0.path.hasPrefix("/files/") }.count == 16)
  }

  @Test func c10_a401RenewsOnceAndRetriesOnce() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    s.on("GET", "/fhir/.well-known/smart-configuration", respond: .json(200, smartConfigJSON(token: s.base + "/token")))
    s.on("POST", "/token") { _, n in .json(200, #"{"access_token":"tok-\#(n)","token_type":"bearer","expires_in":300}"#) }
    s.on("GET", "/fhir/$export", sequence: [.text(401, "request_expired_token"), .status(202, [("Content-Location", s.base + "/st/1")])])
    let clock = TestClock()
    let p = SMARTTokenProvider(baseURL: s.base + "/fhir", clientID: "c", key: SMARTTestKeys.ec.key, clock: clock)
    let client = BulkClient(endpoint: BulkEndpoint(baseURL: s.base + "/fhir", auth: p), pollPolicy: .fast())
    #expect(try await client.kickoff(level: .system, parameters: ExportParameters()) == s.base + "/st/1")
    #expect(s.requests("GET", path: "/fhir/$export").map { $0.header("Authorization") } == ["Bearer tok-1", "Bearer tok-2"])
    #expect(s.requests("POST", path: "/token").count == 2)
    // 401 → 401: fatal, with the server's plain-text message; exactly one renewal. (A forced
    // renewal within 1 s of the previous forced one reuses its token: within that second no new
    // token is asked for; past it, one is.)
    s.on("GET", "/fhir/$export", respond: .text(401, "request_expired_token"))
    await #expect(throws: BulkError.self) { _ = try await client.kickoff(level: .system, parameters: ExportParameters()) }
    #expect(s.requests("POST", path: "/token").count == 2)
    await clock.advance(by: .milliseconds(1050))
    do {
      _ = try await client.kickoff(level: .system, parameters: ExportParameters())
      Issue.record("expected failure")
    } catch let e as BulkError {
      #expect(e.httpStatus == 401)
      #expect(e.description.contains("request_expired_token"))
      #expect(!e.description.contains("tok-"))
    }
    #expect(s.requests("POST", path: "/token").count == 3)
  }

  // MARK: token errors

  @Test func c11_tokenErrorsAreFatalAfterExactlyOneRequest() async throws {
    let key = SMARTTestKeys.ec.key
    let server = try await smartServer(["client-id": key])
    defer { Task { await server.stop() } }
    struct Case {
      var clientID: String
      var key: SMARTKey
      var scope: String?
      var error: String
      var text: String
    }
    let cases = [
      Case(clientID: "nobody", key: key, scope: nil, error: "invalid_client", text: "iss names no registered client"),
      Case(clientID: "client-id", key: SMARTTestKeys.otherEC.key, scope: nil, error: "invalid_client", text: "no registered key has kid"),
      Case(clientID: "client-id", key: key, scope: "user/*.read", error: "invalid_scope", text: "none of the requested scopes"),
    ]
    var before = 0
    for c in cases {
      let p = SMARTTokenProvider(baseURL: server.baseURL, clientID: c.clientID, key: c.key, scope: c.scope)
      let client = BulkClient(endpoint: BulkEndpoint(baseURL: server.baseURL, auth: p), pollPolicy: .fast())
      // Through the client (what `cohort export` does), then again directly: no second request.
      do {
        _ = try await client.kickoff(level: .group("all-patients"), parameters: ExportParameters())
        Issue.record("expected \(c.error)")
      } catch let e as BulkError {
        #expect(e.description.contains(c.error) && e.description.contains(c.text), "\(e)")
      }
      do {
        _ = try await p.token(forceRenew: true)
        Issue.record("expected \(c.error)")
      } catch let e as SMARTError {
        guard case .tokenRejected(let error, let description, let status) = e else {
          Issue.record("unexpected \(e)")
          continue
        }
        #expect(error == c.error)
        #expect(description?.contains(c.text) == true)
        #expect(status == (c.error == "invalid_client" ? 401 : 400))
        #expect(e.isFatal)
      }
      let after = await tokenPosts(server)
      #expect(after - before == 1, "\(c.error): \(after - before) token requests")
      #expect(p.tokenRequestCount == 1)
      before = after
      #expect(await server.requestLog.allSatisfy { !$0.path.contains("$export") })
    }
  }

  // MARK: C12 and end to end

  @Test(arguments: [SMARTAlgorithm.rs384, .es384])
  func c12_endToEndExportWithTokensExpiringMidExport(_ alg: SMARTAlgorithm) async throws {
    let key = alg == .rs384 ? SMARTTestKeys.rsa.key : SMARTTestKeys.ec.key
    // Tokens live 1 s; polls are 300 ms apart and there are 5 of them, so the export outlives several tokens.
    // All on one virtual clock: the server's token lifetimes, the provider's renewals and the client's polls.
    let clock = TestClock()
    let server = try await smartServer(["client-id": key], lifetime: 1, patients: 6, polls: 5, clock: clock)
    defer { Task { await server.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    let events = EventLog()
    let provider = SMARTTokenProvider(baseURL: server.baseURL, clientID: "client-id", key: key, clock: clock)
    // A sticky wrapper makes expired tokens reach the server, so 401 → renew → retry is exercised too.
    let sticky = StickyTokens(provider)
    let poll = PollPolicy(
      minDelay: .milliseconds(300), maxDelay: .milliseconds(300), initialBackoff: .milliseconds(300), maxBackoff: .milliseconds(300),
      jitter: 0, jobTimeout: .seconds(30))
    let client = BulkClient(
      endpoint: BulkEndpoint(baseURL: server.baseURL, auth: sticky), pollPolicy: poll, downloadPolicy: .fast(), events: events.record,
      clock: clock)
    try await provider.checkScopes(covering: ["Patient", "Observation"])
    let statusURL = try await client.kickoff(level: .group("all-patients"), parameters: ExportParameters(types: ["Patient", "Observation"]))
    let manifest = try await advancingWhileAsleep(clock, by: .milliseconds(300)) {
      try await client.waitForManifest(statusURL: statusURL)
    }
    #expect(manifest.requiresAccessToken)
    // Five polls 300 ms apart took 1.2 s or more of virtual time: the first token expired on the way.
    #expect(events.retries.contains { $0.0.contains("status") && $0.0.contains("401") }, "\(events.retries)")
    await clock.advance(by: .milliseconds(1100))  // the token has expired before the files
    let files = try await client.downloadAll(manifest, into: dir.path, parallel: 4, statusURL: statusURL)
    #expect(files.contains { $0.type == "Patient" && $0.lines == 6 })
    try await client.delete(statusURL: statusURL)

    let log = await server.requestLog
    let posts = log.filter { $0.path.hasPrefix("/auth/token") }.count
    #expect(posts >= 3, "only \(posts) token requests")
    #expect(posts == provider.tokenRequestCount)
    #expect(events.retries.contains { $0.0.contains("file download answered HTTP 401") }, "\(events.retries)")
    // Every kick-off, status, file and DELETE request carried a bearer token.
    let kinds: [(String, (String) -> Bool)] = [
      ("kick-off", { $0.contains("$export?") }), ("status", { $0.hasPrefix("/$export-status") }),
      ("file", { $0.hasPrefix("/files/") }),
    ]
    for (name, match) in kinds {
      let rs = log.filter { $0.method == "GET" && match($0.path) }
      #expect(!rs.isEmpty, "no \(name) request")
      #expect(rs.allSatisfy { $0.header("Authorization")?.hasPrefix("Bearer ") == true }, "\(name) without a token")
    }
    let deletes = log.filter { $0.method == "DELETE" }
    #expect(deletes.count == 1 && deletes.allSatisfy { $0.header("Authorization")?.hasPrefix("Bearer ") == true })
    // The token endpoint never receives a bearer token.
    #expect(log.filter { $0.path.hasPrefix("/auth/token") }.allSatisfy { $0.header("Authorization") == nil })

    // Hygiene: no token, assertion or key material in events, error text or descriptions.
    let tokens = Set(log.compactMap { $0.header("Authorization") }.map { String($0.dropFirst(7)) })
    #expect(!tokens.isEmpty)
    var texts = events.all.map { String(describing: $0) }
    texts.append(provider.description)
    var dumped = ""
    dump(provider, to: &dumped)
    texts.append(dumped)
    let pem = alg == .rs384 ? SMARTTestKeys.rsa.pem : SMARTTestKeys.ec.pem
    for text in texts {
      for t in tokens { #expect(!text.contains(t)) }
      for line in keyMaterialLines(pem) { #expect(!text.contains(line)) }
    }
  }

  @Test func c12_tokenIsNotSentToAForeignOriginOnRedirect() async throws {
    let fhir = try await MockServer.start()
    defer { Task { await fhir.stop() } }
    let foreign = try await MockServer.start()
    defer { Task { await foreign.stop() } }
    fhir.on("GET", "/fhir/.well-known/smart-configuration", respond: .json(200, smartConfigJSON(token: fhir.base + "/token")))
    fhir.on("POST", "/token", respond: .json(200, #"{"access_token":"secret-smart-token","token_type":"bearer","expires_in":300}"#))
    fhir.on("GET", "/files/p1", respond: .status(307, [("Location", foreign.base + "/bucket/p1")]))
    foreign.on("GET", "/bucket/p1", respond: .ndjson(patients(2)))
    let p = SMARTTokenProvider(baseURL: fhir.base + "/fhir", clientID: "c", key: SMARTTestKeys.ec.key)
    let client = BulkClient(endpoint: BulkEndpoint(baseURL: fhir.base + "/fhir", auth: p), pollPolicy: .fast(), downloadPolicy: .fast())
    let dir = try TempDir()
    defer { dir.cleanup() }
    let m = try Manifest.parse(Data(manifestJSON(fhir.base, output: [("Patient", fhir.base + "/files/p1", 2)]).utf8))
    #expect(m.requiresAccessToken)
    _ = try await client.downloadAll(m, into: dir.path, statusURL: nil)
    #expect(fhir.requests("GET", path: "/files/p1").first?.header("Authorization") == "Bearer secret-smart-token")
    let r = try #require(foreign.requests("GET", path: "/bucket/p1").first)
    #expect(r.header("Authorization") == nil)
  }

  @Test func c12_manifestFilesOnOtherHostsAreRefusedUnlessAllowed() throws {
    let base = "https://fhir.example.org/r4"
    let m = try Manifest.parse(
      Data(
        manifestJSON(
          "https://fhir.example.org",
          output: [("Patient", "https://fhir.example.org/files/1", nil), ("Observation", "https://bucket.example.net/o/2", nil)]
        ).utf8))
    let strict = TokenOriginPolicy(baseURL: base)
    #expect(strict.allows("https://FHIR.example.org:443/files/1"))
    #expect(!strict.allows("http://fhir.example.org/files/1"))
    #expect(!strict.allows("https://bucket.example.net/o/2"))
    do {
      try strict.check(m)
      Issue.record("expected a refusal")
    } catch let e as SMARTError {
      #expect(e == .foreignOrigin(origins: ["https://bucket.example.net:443"], server: "https://fhir.example.org:443"))
      #expect(e.description.contains("--allow-origin bucket.example.net"))
    }
    for allowed in ["bucket.example.net", "BUCKET.example.net:443", "https://bucket.example.net"] {
      #expect(throws: Never.self) { try TokenOriginPolicy(baseURL: base, allowedOrigins: [allowed]).check(m) }
    }
    #expect(throws: SMARTError.self) { try TokenOriginPolicy(baseURL: base, allowedOrigins: ["bucket.example.net:8443"]).check(m) }
    // Files that need no token may live anywhere.
    let open = try Manifest.parse(
      Data(manifestJSON("https://fhir.example.org", output: [("Patient", "https://cdn.example.com/1", nil)], requiresAccessToken: false).utf8))
    #expect(throws: Never.self) { try strict.check(open) }
  }

  @Test func keygenOutputRegistersWithTheServeCommand() async throws {
    // `keygen` writes the PEM (0600) and prints the JWKS; `cohort serve --smart-client ID=JWKS_FILE` reads it.
    let dir = try TempDir()
    defer { dir.cleanup() }
    let (pem, generated) = try SMARTKey.generate(.es384)
    try SMARTKey.writePrivateKey(pem, to: dir.path + "/client.pem")
    try generated.publicJWKS().write(toFile: dir.path + "/client.jwks", atomically: true, encoding: .utf8)
    var c = BulkServerConfiguration()
    c.auth = .smart(clients: try loadSmartClients(["svc=" + dir.path + "/client.jwks"]))
    c.patients = 2
    let server = try await BulkDataServer.start(c)
    defer { Task { await server.stop() } }
    let key = try SMARTKey.load(path: dir.path + "/client.pem", algorithm: nil, kid: nil)
    #expect(key.kid == generated.kid)
    let p = SMARTTokenProvider(baseURL: server.baseURL, clientID: "svc", key: key)
    let client = BulkClient(endpoint: BulkEndpoint(baseURL: server.baseURL, auth: p), pollPolicy: .fast())
    _ = try await client.kickoff(level: .system, parameters: ExportParameters(types: ["Patient"]))
    #expect(p.tokenRequestCount == 1)
  }

  @Test func c5_serverCheckReportsDiscoveryTokenAndCapabilities() async throws {
    let key = SMARTTestKeys.rsa.key
    let server = try await smartServer(["client-id": key])
    defer { Task { await server.stop() } }
    let p = SMARTTokenProvider(baseURL: server.baseURL, clientID: "client-id", key: key)
    let client = BulkClient(endpoint: BulkEndpoint(baseURL: server.baseURL, auth: p))
    let report = try await p.check(client: client)
    #expect(report.configuration.tokenURL == server.baseURL + "/auth/token")
    #expect(report.configuration.warnings.isEmpty)
    #expect(report.scopeRequested == "system/*.rs")
    #expect(report.scopeGranted == "system/*.rs")
    #expect(report.expiresIn == 300)
    #expect(report.capabilities.exportOperations.contains("group"))
    let text = report.lines.joined(separator: "\n")
    #expect(text.contains("token endpoint: \(server.baseURL)/auth/token"))
    #expect(text.contains("cohort BulkServer"))
    let tokens = await server.requestLog.compactMap { $0.header("Authorization") }.map { String($0.dropFirst(7)) }
    #expect(!tokens.isEmpty)
    for t in tokens { #expect(!text.contains(t)) }
  }
}
