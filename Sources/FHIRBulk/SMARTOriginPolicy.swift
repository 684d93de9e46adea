// Where the access token may go (C12, issue 11 item 1): the FHIR server's own origin, the token
// endpoint's origin, plus hosts the user allowed for this server (`--allow-origin HOST`).
// `BulkClient` checks it on every request that carries the token; a manifest with
// `requiresAccessToken: true` whose files live elsewhere is refused before any download.
import Foundation

public struct TokenOriginPolicy: Sendable, Equatable {
  /// `scheme://host:port` of the FHIR base.
  public let serverOrigin: String?
  /// As given: `host`, `host:port` or `scheme://host[:port]` (case-insensitive).
  public let allowed: [String]
  /// `scheme://host:port` of the SMART token endpoint, when known.
  public let tokenOrigin: String?

  public init(baseURL: String, allowedOrigins: [String] = [], tokenEndpoint: String? = nil) {
    self.serverOrigin = URLText.origin(baseURL)
    self.tokenOrigin = tokenEndpoint.flatMap(URLText.origin)
    self.allowed = allowedOrigins.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
  }

  /// True when the token may be sent to `url`.
  public func allows(_ url: String) -> Bool {
    guard let origin = URLText.origin(url) else { return false }
    if origin == serverOrigin || origin == tokenOrigin { return true }
    guard let c = URLComponents(string: url), let host = c.host?.lowercased() else { return false }
    let port = URLText.origin(url).flatMap { $0.split(separator: ":").last.map(String.init) } ?? ""
    for a in allowed {
      if a.contains("://") {
        if URLText.origin(a) == origin { return true }
      } else if a.contains(":"), !a.hasPrefix("[") {
        if a == "\(host):\(port)" { return true }
      } else if a == host || a == "[\(host)]" {
        return true
      }
    }
    return false
  }

  /// Throws `SMARTError.foreignOrigin` when the manifest wants the token sent to a host that is
  /// neither the server's nor allowed. Manifests with `requiresAccessToken: false` always pass.
  public func check(_ manifest: Manifest) throws {
    guard manifest.requiresAccessToken else { return }
    let urls = manifest.output.map(\.url) + (manifest.deleted ?? []).map(\.url) + manifest.error.map(\.url)
    var foreign: [String] = []
    for url in urls where !allows(url) {
      let o = URLText.origin(url) ?? url
      if !foreign.contains(o) { foreign.append(o) }
    }
    guard foreign.isEmpty else {
      throw SMARTError.foreignOrigin(origins: foreign, server: serverOrigin ?? "the FHIR server")
    }
  }
}
