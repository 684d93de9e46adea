import Crypto
import Foundation
import _CryptoExtras

/// An RFC 6749 §5.2 token error.
struct TokenError: Error, CustomStringConvertible {
  var error: String  // invalid_client | invalid_scope | invalid_grant | invalid_request | unsupported_grant_type
  var description: String
  var status: Int { error == "invalid_client" ? 401 : 400 }
  var json: JSON { .object([("error", .string(error)), ("error_description", .string(description))]) }
}

enum PublicKey: Sendable {
  case rsa(_RSA.Signing.PublicKey)
  case ec(P384.Signing.PublicKey)
}

struct RegisteredKey: Sendable {
  var kid: String?
  var key: PublicKey
}

enum Base64URL {
  static func decode(_ s: Substring) -> Data? {
    var t = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while t.count % 4 != 0 { t += "=" }
    return Data(base64Encoded: t)
  }
  static func encode(_ d: Data) -> String {
    d.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
      .replacingOccurrences(of: "=", with: "")
  }
}

enum JWKS {
  /// Reads the public keys of a JWKS (`{"keys":[…]}`) or of a single JWK.
  static func keys(from data: Data) throws -> [RegisteredKey] {
    let json: JSON
    do { json = try JSON.parse(data) } catch { throw BulkServerError.invalidConfiguration("JWKS is not JSON: \(error)") }
    let list = json["keys"]?.arrayValue ?? [json]
    var out: [RegisteredKey] = []
    for k in list {
      let kid = k["kid"]?.stringValue
      switch k["kty"]?.stringValue {
      case "RSA":
        guard let n = k["n"]?.stringValue.flatMap({ Base64URL.decode(Substring($0)) }),
          let e = k["e"]?.stringValue.flatMap({ Base64URL.decode(Substring($0)) })
        else { throw BulkServerError.invalidConfiguration("RSA JWK \(kid ?? "") lacks n or e") }
        do {
          out.append(RegisteredKey(kid: kid, key: .rsa(try _RSA.Signing.PublicKey(n: n, e: e))))
        } catch {
          throw BulkServerError.invalidConfiguration("RSA JWK \(kid ?? "") is not usable: \(error)")
        }
      case "EC":
        guard k["crv"]?.stringValue == "P-384" else {
          throw BulkServerError.invalidConfiguration("EC JWK \(kid ?? "") must use crv P-384 (ES384)")
        }
        guard let x = k["x"]?.stringValue.flatMap({ Base64URL.decode(Substring($0)) }),
          let y = k["y"]?.stringValue.flatMap({ Base64URL.decode(Substring($0)) })
        else { throw BulkServerError.invalidConfiguration("EC JWK \(kid ?? "") lacks x or y") }
        do {
          out.append(RegisteredKey(kid: kid, key: .ec(try P384.Signing.PublicKey(rawRepresentation: x + y))))
        } catch {
          throw BulkServerError.invalidConfiguration("EC JWK \(kid ?? "") is not usable: \(error)")
        }
      default:
        throw BulkServerError.invalidConfiguration("JWK \(kid ?? "") has an unsupported kty")
      }
    }
    guard !out.isEmpty else { throw BulkServerError.invalidConfiguration("JWKS has no keys") }
    return out
  }
}

struct VerifiedAssertion {
  var clientID: String
  var jti: String
  var exp: Int
}

enum ClientAssertion {
  /// Verifies a SMART Backend Services client assertion (signature, iss = sub, aud, exp, jti present).
  static func verify(_ token: String, clients: [String: [RegisteredKey]], tokenURL: String, now: Int) throws(TokenError)
    -> VerifiedAssertion
  {
    let parts = token.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 3, let headerData = Base64URL.decode(parts[0]), let claimsData = Base64URL.decode(parts[1]),
      let signature = Base64URL.decode(parts[2]), let header = try? JSON.parse(headerData),
      let claims = try? JSON.parse(claimsData)
    else {
      throw TokenError(error: "invalid_client", description: "client_assertion is not a compact JWS (header.claims.signature)")
    }
    guard let iss = claims["iss"]?.stringValue, let keys = clients[iss] else {
      throw TokenError(error: "invalid_client", description: "client_assertion iss names no registered client")
    }
    guard claims["sub"]?.stringValue == iss else {
      throw TokenError(error: "invalid_client", description: "client_assertion sub must equal iss (the client_id)")
    }
    let alg = header["alg"]?.stringValue ?? ""
    guard alg == "RS384" || alg == "ES384" else {
      throw TokenError(error: "invalid_client", description: "client_assertion alg '\(alg)' is not supported (use RS384 or ES384)")
    }
    let kid = header["kid"]?.stringValue
    let signingInput = Data((String(parts[0]) + "." + String(parts[1])).utf8)
    let digest = SHA384.hash(data: signingInput)
    let candidates = keys.filter { kid == nil || $0.kid == nil || $0.kid == kid }
    guard !candidates.isEmpty else {
      throw TokenError(error: "invalid_client", description: "no registered key has kid '\(kid ?? "")'")
    }
    var valid = false
    for k in candidates {
      switch (k.key, alg) {
      case (.rsa(let pub), "RS384"):
        if pub.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: digest, padding: .insecurePKCS1v1_5) {
          valid = true
        }
      case (.ec(let pub), "ES384"):
        if let sig = try? P384.Signing.ECDSASignature(rawRepresentation: signature), pub.isValidSignature(sig, for: digest) {
          valid = true
        }
      default: continue
      }
      if valid { break }
    }
    guard valid else {
      throw TokenError(error: "invalid_client", description: "client_assertion signature does not verify against the registered JWKS")
    }
    let audOK: Bool
    if let aud = claims["aud"]?.stringValue {
      audOK = aud == tokenURL
    } else {
      audOK = claims["aud"]?.arrayValue?.contains { $0.stringValue == tokenURL } ?? false
    }
    guard audOK else {
      throw TokenError(error: "invalid_client", description: "client_assertion aud must be the token URL \(tokenURL)")
    }
    guard let exp = claims["exp"]?.intValue else {
      throw TokenError(error: "invalid_client", description: "client_assertion has no exp")
    }
    guard exp > now else {
      throw TokenError(error: "invalid_grant", description: "client_assertion has expired (exp is in the past)")
    }
    guard exp <= now + 300 + 5 else {
      throw TokenError(error: "invalid_grant", description: "client_assertion exp is more than 5 minutes in the future")
    }
    guard let jti = claims["jti"]?.stringValue, !jti.isEmpty else {
      throw TokenError(error: "invalid_client", description: "client_assertion has no jti")
    }
    return VerifiedAssertion(clientID: iss, jti: jti, exp: exp)
  }

  /// Grants the requested scopes that the allowed patterns cover.
  static func grant(requested: [String], allowed: [String]) -> [String] {
    requested.filter { scope in allowed.contains { pattern in scopeMatches(scope, pattern: pattern) } }
  }

  static func scopeMatches(_ scope: String, pattern: String) -> Bool {
    func split(_ s: String) -> (String, String, String)? {
      guard let slash = s.firstIndex(of: "/"), let dot = s.lastIndex(of: "."), slash < dot else { return nil }
      return (String(s[..<slash]), String(s[s.index(after: slash)..<dot]), String(s[s.index(after: dot)...]))
    }
    guard let (c, t, a) = split(scope), let (pc, pt, pa) = split(pattern) else { return scope == pattern }
    guard c == pc, pt == "*" || pt == t else { return false }
    if pa == "*" || pa == a { return true }
    // v2 "rs" grants the same as v1 "read" for export purposes.
    if (pa == "read" && a == "rs") || (pa == "rs" && a == "read") { return true }
    if pa == "cruds" && a.allSatisfy({ "cruds".contains($0) }) { return true }
    return false
  }

  /// Resource types a set of granted scopes lets the client read (nil: all).
  static func readableTypes(_ scopes: [String]) -> Set<String>? {
    var types = Set<String>()
    for s in scopes {
      guard s.hasPrefix("system/"), let dot = s.lastIndex(of: ".") else { continue }
      let action = s[s.index(after: dot)...]
      guard action == "read" || action == "*" || action.contains("r") else { continue }
      let t = String(s[s.index(s.startIndex, offsetBy: 7)..<dot])
      if t == "*" { return nil }
      types.insert(t)
    }
    return types
  }
}
