// SMART Backend Services (client side): discovery (C1, C2), token requests (C6, C7, C11) and a
// single-flight token cache renewed shortly before expiry (C9). Tokens live in memory only.
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// What `/.well-known/smart-configuration` says (C1, C2).
public struct SMARTConfiguration: Sendable, Equatable {
  /// Absolute token endpoint (relative values are resolved against the FHIR base).
  public var tokenURL: String
  /// One line per missing or unexpected field (C2); discovery never fails on these.
  public var warnings: [String]
  public var authMethods: [String]
  public var signingAlgorithms: [String]
  public var grantTypes: [String]
  public var capabilities: [String]
  public var scopesSupported: [String]
  /// Where the token URL came from: the well-known document, the CapabilityStatement, or configuration.
  public var source: String

  public init(
    tokenURL: String, warnings: [String] = [], authMethods: [String] = [], signingAlgorithms: [String] = [],
    grantTypes: [String] = [], capabilities: [String] = [], scopesSupported: [String] = [], source: String = "configuration"
  ) {
    self.tokenURL = tokenURL
    self.warnings = warnings
    self.authMethods = authMethods
    self.signingAlgorithms = signingAlgorithms
    self.grantTypes = grantTypes
    self.capabilities = capabilities
    self.scopesSupported = scopesSupported
    self.source = source
  }
}

/// Obtains access tokens with the client-credentials grant and a signed client assertion.
/// Parallel callers share one token request (single flight); the token is renewed at
/// `expires_in − min(30 s, expires_in/4)`. A refused token request (invalid_client,
/// invalid_scope, …) is remembered: later calls fail the same way without asking again (C11).
/// Lifetimes are measured on the injected clock (`ContinuousClock()` unless a test passes a virtual one).
public final class SMARTTokenProvider: AccessTokenProvider, CustomStringConvertible, CustomReflectable {
  public let baseURL: String
  public let clientID: String
  public let key: SMARTKey
  /// The scope asked for; nil: chosen from the server's configuration (C8).
  public let requestedScope: String?
  let configuredTokenURL: String?
  let http: HTTPClient
  let allowInsecureHTTP: Bool
  let warn: @Sendable (String) -> Void
  /// Decides renewal, expiry and the forced-renewal grace; instants are durations on it since `init`.
  let clock: ClockReader
  /// A forced renewal within this long after another forced renewal reuses its token (parallel 401s, C9/C10).
  let forcedRenewalGrace: Duration = .seconds(1)

  struct Issued: Sendable {
    var token: String
    var tokenType: String
    var scope: String
    var expiresIn: Int
    var obtainedAt: Duration
    var renewAt: Duration
    var expiresAt: Duration
    /// Obtained by a forced renewal (after a 401).
    var forced = false
  }

  struct State: Sendable {
    var configuration: SMARTConfiguration?
    var issued: Issued?
    var inflight: Task<Issued, any Error>?
    var fatal: SMARTError?
    var tokenRequests = 0
    var sentScope: String?
  }

  private let state = Locked(State())

  /// - Parameters:
  ///   - baseURL: the FHIR base (discovery is `[base]/.well-known/smart-configuration`).
  ///   - scope: nil picks `system/*.rs`, or `system/*.read` for SMART v1 servers (C8).
  ///   - tokenURL: skips discovery when given.
  ///   - allowInsecureHTTP: plain-HTTP token endpoints are refused except on loopback hosts unless true (C6).
  ///   - clock: measures token lifetimes (tests inject a virtual clock).
  public init(
    baseURL: String, clientID: String, key: SMARTKey, scope: String? = nil, tokenURL: String? = nil,
    httpClient: HTTPClient = BulkClient.defaultHTTPClient, allowInsecureHTTP: Bool = false,
    warn: @escaping @Sendable (String) -> Void = { _ in }, clock: any Clock<Duration> = ContinuousClock()
  ) {
    var base = baseURL
    while base.hasSuffix("/") { base.removeLast() }
    self.baseURL = base
    self.clientID = clientID
    self.key = key
    self.requestedScope = scope.flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
    self.configuredTokenURL = tokenURL
    self.http = httpClient
    self.allowInsecureHTTP = allowInsecureHTTP
    self.warn = warn
    self.clock = ClockReader(clock)
  }

  public var description: String { "SMARTTokenProvider(client \(clientID), \(key.algorithm.rawValue) kid \(key.kid), \(baseURL))" }
  public var customMirror: Mirror { Mirror(self, children: ["clientID": clientID, "key": key, "baseURL": baseURL]) }

  // MARK: Tokens

  public func token(forceRenew: Bool) async throws -> String {
    enum Step {
      case have(String)
      case wait(Task<Issued, any Error>)
      case fail(SMARTError)
    }
    let step: Step = state.withLock { s in
      if let f = s.fatal { return .fail(f) }
      if let t = s.inflight { return .wait(t) }
      let now = clock.now
      if let i = s.issued, now < i.expiresAt {
        if !forceRenew && now < i.renewAt { return .have(i.token) }
        // Parallel requests that all saw a 401 share the renewal the first of them caused.
        if forceRenew && i.forced && now - i.obtainedAt < forcedRenewalGrace { return .have(i.token) }
      }
      let t = Task { try await self.renew(forced: forceRenew) }
      s.inflight = t
      return .wait(t)
    }
    switch step {
    case .have(let token): return token
    case .fail(let e): throw e
    case .wait(let task): return try await task.value.token
    }
  }

  /// Runs inside the single in-flight task; records the outcome before returning.
  private func renew(forced: Bool) async throws -> Issued {
    do {
      var issued = try await requestToken()
      issued.forced = forced
      state.withLock { s in
        s.issued = issued
        s.inflight = nil
      }
      return issued
    } catch {
      state.withLock { s in
        s.inflight = nil
        if let e = error as? SMARTError, Self.remembered(e) { s.fatal = e }
      }
      throw error
    }
  }

  private static func remembered(_ e: SMARTError) -> Bool {
    switch e {
    case .tokenRejected, .insecureTokenURL, .signing, .key: return true
    default: return false
    }
  }

  /// The token endpoint in use: configured, or discovered by the first token request.
  public var tokenEndpoint: String? { state.current.configuration?.tokenURL ?? configuredTokenURL }

  /// The scope the server granted with the current token (nil before the first token).
  public var grantedScope: String? { get async { state.current.issued?.scope } }

  /// `expires_in` of the current token, in seconds.
  public var expiresIn: Int? { get async { state.current.issued?.expiresIn } }

  /// The scope sent (or to be sent) in token requests.
  public var scopeSent: String? { state.current.sentScope ?? requestedScope }

  /// Token requests made so far (each one a POST to the token endpoint).
  public var tokenRequestCount: Int { state.current.tokenRequests }

  /// Gets a token if needed, then fails when the granted scopes don't cover `types` (C7). An empty
  /// `types` (an export of every type) needs a `system/*` read scope.
  public func checkScopes(covering types: [String]) async throws {
    _ = try await token(forceRenew: false)
    let granted = await grantedScope ?? ""
    let missing = SMARTScopes(granted: granted).missing(for: types)
    if !missing.isEmpty { throw SMARTError.scopeNotGranted(types: missing, granted: granted) }
  }

  // MARK: Discovery

  /// GET `[base]/.well-known/smart-configuration` (C1), checked field by field (C2: warnings).
  /// When the document is missing (404), the CapabilityStatement's `oauth-uris` extension is used.
  /// The result is kept for later token requests.
  public func discover() async throws -> SMARTConfiguration {
    let url = baseURL + "/.well-known/smart-configuration"
    let (status, body) = try await get(url, accept: "application/json")
    var config: SMARTConfiguration
    if status == 200 {
      config = try parseConfiguration(body, url: url)
    } else if status == 404 || status == 410, let fallback = try? await tokenURLFromCapabilityStatement() {
      config = SMARTConfiguration(
        tokenURL: fallback,
        warnings: ["\(url) answered HTTP \(status); using the token endpoint from the CapabilityStatement (oauth-uris)"],
        source: "CapabilityStatement")
    } else {
      throw SMARTError.discovery(url: url, reason: "HTTP \(status)\(Self.snippet(body).map { " (\($0))" } ?? "")")
    }
    for w in config.warnings { warn(w) }
    let c = config
    state.withLock { $0.configuration = c }
    return config
  }

  func parseConfiguration(_ body: Data, url: String) throws -> SMARTConfiguration {
    guard let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else {
      throw SMARTError.discovery(url: url, reason: "the answer is not a JSON object")
    }
    guard let raw = json["token_endpoint"] as? String, !raw.isEmpty else {
      throw SMARTError.discovery(url: url, reason: "token_endpoint is missing")
    }
    // C2: relative URLs resolve against the FHIR base (as a folder).
    guard let tokenURL = URLText.resolve(raw, against: baseURL + "/") else {
      throw SMARTError.discovery(url: url, reason: "token_endpoint '\(raw)' is not a usable URL")
    }
    func strings(_ name: String) -> [String]? { (json[name] as? [Any])?.compactMap { $0 as? String } }
    var warnings: [String] = []
    let methods = strings("token_endpoint_auth_methods_supported")
    let algs = strings("token_endpoint_auth_signing_alg_values_supported")
    let grants = strings("grant_types_supported")
    let caps = strings("capabilities")
    func check(_ list: [String]?, _ name: String, _ wanted: String) {
      if let list {
        if !list.contains(wanted) { warnings.append("smart-configuration \(name) does not list \(wanted); the token request may be refused") }
      } else {
        warnings.append("smart-configuration has no \(name) (expected \(wanted)); going on")
      }
    }
    check(methods, "token_endpoint_auth_methods_supported", "private_key_jwt")
    if let algs {
      if !algs.contains(key.algorithm.rawValue) {
        warnings.append(
          "smart-configuration token_endpoint_auth_signing_alg_values_supported lists \(algs.isEmpty ? "nothing" : algs.joined(separator: ", ")), not \(key.algorithm.rawValue) (the key's algorithm)"
        )
      }
    } else {
      warnings.append("smart-configuration has no token_endpoint_auth_signing_alg_values_supported (expected RS384 or ES384); going on")
    }
    check(grants, "grant_types_supported", "client_credentials")
    check(caps, "capabilities", "client-confidential-asymmetric")
    return SMARTConfiguration(
      tokenURL: tokenURL, warnings: warnings, authMethods: methods ?? [], signingAlgorithms: algs ?? [],
      grantTypes: grants ?? [], capabilities: caps ?? [], scopesSupported: strings("scopes_supported") ?? [],
      source: ".well-known/smart-configuration")
  }

  private func tokenURLFromCapabilityStatement() async throws -> String? {
    let (status, body) = try await get(baseURL + "/metadata", accept: "application/fhir+json")
    guard status == 200, let cs = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any],
      let rest = cs["rest"] as? [[String: Any]]
    else { return nil }
    for r in rest {
      let exts = ((r["security"] as? [String: Any])?["extension"] as? [[String: Any]]) ?? []
      for e in exts where (e["url"] as? String)?.hasSuffix("oauth-uris") == true {
        for inner in (e["extension"] as? [[String: Any]]) ?? [] where inner["url"] as? String == "token" {
          if let u = inner["valueUri"] as? String ?? inner["valueUrl"] as? String {
            return URLText.resolve(u, against: baseURL + "/")
          }
        }
      }
    }
    return nil
  }

  /// GET without credentials, following up to 5 redirects.
  private func get(_ url: String, accept: String) async throws -> (Int, Data) {
    var current = url
    for _ in 0...5 {
      var req = HTTPClientRequest(url: current)
      req.method = .GET
      req.headers.add(name: "Accept", value: accept)
      req.headers.add(name: "User-Agent", value: "cohort-fhirbulk/0.1")
      let response: HTTPClientResponse
      do {
        response = try await http.execute(req, timeout: .seconds(30))
      } catch is CancellationError {
        throw CancellationError()
      } catch {
        throw SMARTError.discovery(url: current, reason: "cannot reach the server: \(BulkClient.describe(error))")
      }
      let body = (try? await response.body.collect(upTo: 1 << 20)).map { Data($0.readableBytesView) } ?? Data()
      let code = Int(response.status.code)
      if [301, 302, 303, 307, 308].contains(code), let loc = response.headers.first(name: "Location"),
        let next = URLText.resolve(loc, against: current)
      {
        current = next
        continue
      }
      return (code, body)
    }
    throw SMARTError.discovery(url: url, reason: "too many redirects")
  }

  // MARK: Token request

  private func isLoopback(_ url: String) -> Bool {
    guard let host = URLComponents(string: url)?.host?.lowercased() else { return false }
    return host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
  }

  /// POST the client-credentials grant with a fresh assertion (C6) and read the answer (C7).
  private func requestToken() async throws -> Issued {
    var configuration = state.current.configuration
    if configuration == nil {
      if let configured = configuredTokenURL {
        guard URLText.isAbsoluteHTTP(configured) else {
          throw SMARTError.discovery(url: configured, reason: "the configured token URL is not an absolute http(s) URL")
        }
        configuration = SMARTConfiguration(tokenURL: configured)
        let c = configuration
        state.withLock { $0.configuration = c }
      } else {
        configuration = try await discover()
      }
    }
    guard let configuration else { throw SMARTError.discovery(url: baseURL, reason: "no token endpoint") }
    let tokenURL = configuration.tokenURL
    if tokenURL.lowercased().hasPrefix("http://") && !allowInsecureHTTP && !isLoopback(tokenURL) {
      throw SMARTError.insecureTokenURL(tokenURL)
    }
    let scope =
      requestedScope
      ?? SMARTScopes.defaultScope(capabilities: configuration.capabilities, scopesSupported: configuration.scopesSupported)
    let assertion = try makeClientAssertion(clientID: clientID, tokenURL: tokenURL, key: key)
    let form = [
      ("grant_type", "client_credentials"),
      ("scope", scope),
      ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
      ("client_assertion", assertion),
    ]
    let body = form.map { URLText.encode($0.0) + "=" + URLText.encode($0.1) }.joined(separator: "&")
    var req = HTTPClientRequest(url: tokenURL)
    req.method = .POST
    req.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
    req.headers.add(name: "Accept", value: "application/json")
    req.headers.add(name: "User-Agent", value: "cohort-fhirbulk/0.1")
    req.body = .bytes(ByteBuffer(string: body))
    state.withLock { s in
      s.tokenRequests += 1
      s.sentScope = scope
    }
    let started = clock.now
    let response: HTTPClientResponse
    do {
      response = try await http.execute(req, timeout: .seconds(30))
    } catch is CancellationError {
      throw CancellationError()
    } catch {
      throw SMARTError.network(url: tokenURL, message: Self.scrub(BulkClient.describe(error), assertion))
    }
    let status = Int(response.status.code)
    let data: Data
    do {
      data = Data(try await response.body.collect(upTo: 1 << 20).readableBytesView)
    } catch {
      throw SMARTError.network(url: tokenURL, message: "reading the answer failed")
    }
    let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    guard status == 200 else {
      if (300..<400).contains(status) {
        throw SMARTError.tokenRejected(
          error: "redirect", description: "the token endpoint redirects (HTTP \(status)); configure the final token URL with --token-url",
          status: status)
      }
      if let json, let error = json["error"] as? String {
        let description = (json["error_description"] as? String).map { Self.oneLine(Self.scrub($0, assertion)) }
        throw SMARTError.tokenRejected(error: Self.oneLine(Self.scrub(error, assertion)), description: description, status: status)
      }
      let text = Self.snippet(data).map { Self.scrub($0, assertion) }
      if (400..<500).contains(status) {
        throw SMARTError.tokenRejected(error: "HTTP \(status)", description: text, status: status)
      }
      throw SMARTError.tokenResponse(url: tokenURL, reason: "HTTP \(status)\(text.map { " (\($0))" } ?? "")")
    }
    guard let json else { throw SMARTError.tokenResponse(url: tokenURL, reason: "the answer is not a JSON object") }
    guard let token = json["access_token"] as? String, !token.isEmpty else {
      throw SMARTError.tokenResponse(url: tokenURL, reason: "access_token is missing")
    }
    guard let type = json["token_type"] as? String else {
      throw SMARTError.tokenResponse(url: tokenURL, reason: "token_type is missing")
    }
    guard type.lowercased() == "bearer" else {
      throw SMARTError.tokenResponse(url: tokenURL, reason: "token_type is '\(Self.oneLine(type))', not bearer")
    }
    var expiresIn: Int
    if let n = json["expires_in"] as? NSNumber, !(json["expires_in"] is Bool) {
      expiresIn = n.intValue
    } else if let s = json["expires_in"] as? String, let n = Int(s) {
      expiresIn = n
    } else {
      expiresIn = 300
      warn("the token response has no expires_in; assuming 300 seconds")
    }
    if expiresIn <= 0 {
      warn("the token response has expires_in \(expiresIn); the token will be renewed on every use")
      expiresIn = 0
    }
    // RFC 6749 §5.1: an omitted scope means the requested one was granted.
    let granted = (json["scope"] as? String) ?? scope
    let lifetime = Duration.seconds(expiresIn)
    let margin = min(Duration.seconds(30), lifetime / 4)
    return Issued(
      token: token, tokenType: type, scope: granted, expiresIn: expiresIn, obtainedAt: clock.now,
      renewAt: started + lifetime - margin, expiresAt: started + lifetime)
  }

  static func scrub(_ text: String, _ secret: String) -> String {
    secret.isEmpty ? text : text.replacingOccurrences(of: secret, with: "***")
  }

  static func oneLine(_ s: String) -> String {
    let t = s.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    return t.count > 300 ? String(t.prefix(300)) + "…" : t
  }

  static func snippet(_ data: Data) -> String? {
    guard !data.isEmpty else { return nil }
    let s = oneLine(String(decoding: data.prefix(2000), as: UTF8.self))
    return s.isEmpty ? nil : s
  }
}

// MARK: server check (C1–C7 end to end)

/// What `server check NAME` prints: discovery, the token, the CapabilityStatement.
public struct SMARTCheckReport: Sendable {
  public var configuration: SMARTConfiguration
  public var scopeRequested: String
  public var scopeGranted: String
  public var expiresIn: Int
  public var capabilities: CapabilitySummary

  /// Human-readable lines (no token, no assertion).
  public var lines: [String] {
    var out = [
      "token endpoint: \(configuration.tokenURL) (from \(configuration.source))",
      "scope requested: \(scopeRequested)",
      "scope granted: \(scopeGranted.isEmpty ? "(none)" : scopeGranted)",
      "token lifetime: \(expiresIn) s",
    ]
    if !configuration.signingAlgorithms.isEmpty {
      out.append("signing algorithms: \(configuration.signingAlgorithms.joined(separator: ", "))")
    }
    let sw = [capabilities.softwareName, capabilities.softwareVersion].compactMap { $0 }.joined(separator: " ")
    out.append("server: \(sw.isEmpty ? "(unnamed)" : sw)\(capabilities.fhirVersion.map { ", FHIR \($0)" } ?? "")")
    out.append(
      "export operations: \(capabilities.exportOperations.isEmpty ? "(none declared)" : capabilities.exportOperations.sorted().joined(separator: ", "))"
    )
    out.append("resource types: \(capabilities.resourceTypes.count)")
    out += configuration.warnings.map { "warning: \($0)" }
    return out
  }
}

extension SMARTTokenProvider {
  /// Discovery (unless a token URL is configured), a fresh token, then the CapabilityStatement read
  /// with it through `client` (whose endpoint should use this provider).
  public func check(client: BulkClient) async throws -> SMARTCheckReport {
    let configuration: SMARTConfiguration
    if let configured = configuredTokenURL {
      configuration = SMARTConfiguration(tokenURL: configured)
      state.withLock { $0.configuration = configuration }
    } else {
      configuration = try await discover()
    }
    _ = try await token(forceRenew: false)
    let capabilities = try await client.capabilities()
    return SMARTCheckReport(
      configuration: configuration, scopeRequested: scopeSent ?? "", scopeGranted: await grantedScope ?? "",
      expiresIn: await expiresIn ?? 0, capabilities: capabilities)
  }
}
