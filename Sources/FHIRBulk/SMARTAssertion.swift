// The SMART Backend Services client assertion (C5) and scope arithmetic (C7, C8).
import Foundation

/// Signs a client assertion: header `{alg, kid, typ:"JWT"}`; claims `iss` = `sub` = client id,
/// `aud` = the exact token URL, integer `exp` = now + 300 s (the 5-minute maximum), and a fresh
/// random `jti` (C5). Nothing else.
public func makeClientAssertion(clientID: String, tokenURL: String, key: SMARTKey, now: Date = Date()) throws -> String {
  let header: [String: Any] = ["alg": key.algorithm.rawValue, "kid": key.kid, "typ": "JWT"]
  let claims: [String: Any] = [
    "iss": clientID, "sub": clientID, "aud": tokenURL,
    "exp": Int(now.timeIntervalSince1970.rounded(.down)) + SMARTLimits.assertionLifetime,
    "jti": UUID().uuidString.lowercased() + "-" + String(UInt64.random(in: 0...UInt64.max), radix: 36),
  ]
  func part(_ object: [String: Any]) throws -> String {
    do {
      return Base64URL.encode(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    } catch {
      throw SMARTError.signing("the JWT could not be encoded")
    }
  }
  let input = try part(header) + "." + part(claims)
  let signature = try key.sign(Data(input.utf8))
  return input + "." + Base64URL.encode(signature)
}

enum SMARTLimits {
  /// Seconds from now to the assertion's `exp` (SMART: no more than five minutes).
  static let assertionLifetime = 300
}

/// What a granted scope string lets the client read (system scopes; v1 `read`/`*` and v2 `r…`).
public struct SMARTScopes: Sendable, Equatable {
  /// True when a `system/*.…` scope allows reading every type.
  public var allTypes: Bool
  /// Types named by readable `system/Type.…` scopes.
  public var types: Set<String>

  public init(granted: String) {
    var all = false
    var types = Set<String>()
    for scope in granted.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }) {
      guard scope.hasPrefix("system/"), let dot = scope.lastIndex(of: ".") else { continue }
      let type = scope[scope.index(scope.startIndex, offsetBy: 7)..<dot]
      var permission = String(scope[scope.index(after: dot)...])
      if let q = permission.firstIndex(of: "?") { permission = String(permission[..<q]) }
      let readable =
        permission == "read" || permission == "*"
        || (permission.contains("r") && permission.allSatisfy { "cruds".contains($0) })
      guard readable, !type.isEmpty else { continue }
      if type == "*" { all = true } else { types.insert(String(type)) }
    }
    self.allTypes = all
    self.types = types
  }

  /// The requested types the scopes don't cover; `[]` for an export of all types means "all
  /// types" is needed and reported as such.
  public func missing(for requested: [String]) -> [String] {
    if allTypes { return [] }
    if requested.isEmpty { return ["all resource types (no _type given)"] }
    return requested.filter { !types.contains($0) }
  }

  /// The default scope for a server (C8): v1 `system/*.read` when the server only speaks SMART v1
  /// scopes, otherwise v2 `system/*.rs`.
  public static func defaultScope(capabilities: [String], scopesSupported: [String]) -> String {
    let v1 = capabilities.contains("permission-v1")
    let v2 = capabilities.contains("permission-v2")
    if v1 && !v2 { return "system/*.read" }
    if !v2, !scopesSupported.isEmpty {
      let systemScopes = scopesSupported.filter { $0.hasPrefix("system/") }
      let hasV2 = systemScopes.contains { s in
        guard let dot = s.lastIndex(of: ".") else { return false }
        let p = s[s.index(after: dot)...]
        return p != "read" && p != "write" && p != "*" && p.allSatisfy { "cruds".contains($0) }
      }
      let hasV1 = systemScopes.contains { $0.hasSuffix(".read") || $0.hasSuffix(".*") }
      if hasV1 && !hasV2 { return "system/*.read" }
    }
    return "system/*.rs"
  }
}
