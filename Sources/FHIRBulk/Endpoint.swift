// Where and how to talk to one Bulk Data server.

/// Kick-off method (C13): GET with query parameters by default, POST with a `Parameters` body per
/// server (required for `patient`).
public enum KickoffMethod: String, Sendable, Codable, CaseIterable {
  case get, post
}

/// The export level: `Group/{id}/$export`, `Patient/$export` or `$export`.
public enum ExportLevel: Sendable, Equatable, Hashable {
  case group(String)
  case patient
  case system

  /// Short name used in messages and capability checks.
  public var name: String {
    switch self {
    case .group: return "group"
    case .patient: return "patient"
    case .system: return "system"
    }
  }
}

public struct BulkEndpoint: Sendable {
  /// FHIR base URL, e.g. `https://fhir.example.org/r4` (a trailing `/` is ignored).
  public var baseURL: String
  public var kickoffMethod: KickoffMethod
  /// Nil: no `Authorization` header is ever sent.
  public var auth: (any AccessTokenProvider)?
  public var userAgent: String
  /// Sent on every request to the FHIR server (not on file requests to other origins).
  public var extraHeaders: [(String, String)]
  /// C16: `Prefer: respond-async, handling=lenient` when true.
  public var lenient: Bool
  /// C28: the Accept header of status requests.
  public var statusAccept: String
  /// Other origins the access token may go to for this server (`host`, `host:port` or
  /// `scheme://host[:port]`), besides the server's own and the token endpoint's (C12).
  public var allowedOrigins: [String]

  public init(
    baseURL: String, kickoffMethod: KickoffMethod = .get, auth: (any AccessTokenProvider)? = nil,
    userAgent: String = "cohort-fhirbulk/0.1", extraHeaders: [(String, String)] = [],
    lenient: Bool = false, statusAccept: String = "application/json", allowedOrigins: [String] = []
  ) {
    var base = baseURL
    while base.hasSuffix("/") { base.removeLast() }
    self.baseURL = base
    self.kickoffMethod = kickoffMethod
    self.auth = auth
    self.userAgent = userAgent
    self.extraHeaders = extraHeaders
    self.lenient = lenient
    self.statusAccept = statusAccept
    self.allowedOrigins = allowedOrigins
  }

  /// Where the token may go: this server, its token endpoint (when the provider knows it) and
  /// `allowedOrigins`.
  public var tokenPolicy: TokenOriginPolicy {
    TokenOriginPolicy(baseURL: baseURL, allowedOrigins: allowedOrigins, tokenEndpoint: auth?.tokenEndpoint)
  }
}
