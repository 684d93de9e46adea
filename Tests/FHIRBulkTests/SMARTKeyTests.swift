// SMART keys, client assertions and scopes without a network (C3, C4, C5, C7, C8).
import Crypto
import Foundation
import Testing
import _CryptoExtras

@testable import FHIRBulk

/// Keys generated once per test run (RSA generation is slow in debug builds).
enum SMARTTestKeys {
  static let rsa: (pem: String, key: SMARTKey) = {
    do { return try SMARTKey.generate(.rs384) } catch { fatalError("RSA key generation failed: \(error)") }
  }()
  static let ec: (pem: String, key: SMARTKey) = {
    do { return try SMARTKey.generate(.es384) } catch { fatalError("EC key generation failed: \(error)") }
  }()
  static let otherEC: (pem: String, key: SMARTKey) = {
    do { return try SMARTKey.generate(.es384) } catch { fatalError("EC key generation failed: \(error)") }
  }()
}

/// JSON object of a base64url JWT segment.
func jwtPart(_ token: String, _ index: Int) throws -> [String: Any] {
  let parts = token.split(separator: ".", omittingEmptySubsequences: false)
  let data = try #require(Base64URL.decode(String(parts[index])))
  return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

func jwksKey(_ key: SMARTKey) throws -> [String: Any] {
  let jwks = try #require(try JSONSerialization.jsonObject(with: Data(key.publicJWKS().utf8)) as? [String: Any])
  let keys = try #require(jwks["keys"] as? [[String: Any]])
  try #require(keys.count == 1)
  return keys[0]
}

/// The PEM body lines (base64 of the private key) — must never appear in any text we produce.
func keyMaterialLines(_ pem: String) -> [String] {
  pem.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("-----") && $0.count >= 40 }
}

@Suite struct SMARTKeyTests {
  @Test func c3_publicJWKSHasBareKeyMembersOnly() throws {
    for (key, kty) in [(SMARTTestKeys.rsa.key, "RSA"), (SMARTTestKeys.ec.key, "EC")] {
      let jwk = try jwksKey(key)
      #expect(jwk["kty"] as? String == kty)
      #expect(jwk["kid"] as? String == key.kid)
      #expect(jwk["alg"] as? String == key.algorithm.rawValue)
      #expect(jwk["use"] as? String == "sig")
      for forbidden in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] { #expect(jwk[forbidden] == nil, "\(kty) JWK has \(forbidden)") }
      if kty == "RSA" {
        let n = try #require(Base64URL.decode(jwk["n"] as? String ?? ""))
        #expect(n.count == 256 && n.first != 0)  // 2048 bits, no leading zero
        #expect(jwk["e"] as? String == "AQAB")
      } else {
        #expect(jwk["crv"] as? String == "P-384")
        #expect(Base64URL.decode(try #require(jwk["x"] as? String))?.count == 48)
        #expect(Base64URL.decode(try #require(jwk["y"] as? String))?.count == 48)
      }
      // kid defaults to the RFC 7638 thumbprint, computed here independently.
      let canonical =
        kty == "RSA"
        ? #"{"e":"\#(jwk["e"] as? String ?? "")","kty":"RSA","n":"\#(jwk["n"] as? String ?? "")"}"#
        : #"{"crv":"P-384","kty":"EC","x":"\#(jwk["x"] as? String ?? "")","y":"\#(jwk["y"] as? String ?? "")"}"#
      #expect(key.kid == Base64URL.encode(Data(SHA256.hash(data: Data(canonical.utf8)))))
      #expect(key.kid.count == 43)
    }
    #expect(SMARTTestKeys.ec.key.kid != SMARTTestKeys.otherEC.key.kid)
  }

  @Test func c4_bothAlgorithmsVerifyWithTheJWKSPublicKey() throws {
    for key in [SMARTTestKeys.rsa.key, SMARTTestKeys.ec.key] {
      let jwt = try makeClientAssertion(clientID: "c", tokenURL: "https://as.example/token", key: key)
      let parts = jwt.split(separator: ".").map(String.init)
      let input = Data((parts[0] + "." + parts[1]).utf8)
      let sig = try #require(Base64URL.decode(parts[2]))
      let jwk = try jwksKey(key)
      switch key.algorithm {
      case .es384:
        #expect(sig.count == 96)  // raw r‖s, not DER
        let x = try #require(Base64URL.decode(jwk["x"] as? String ?? ""))
        let y = try #require(Base64URL.decode(jwk["y"] as? String ?? ""))
        let pub = try P384.Signing.PublicKey(rawRepresentation: x + y)
        #expect(pub.isValidSignature(try P384.Signing.ECDSASignature(rawRepresentation: sig), for: SHA384.hash(data: input)))
        #expect(!pub.isValidSignature(try P384.Signing.ECDSASignature(rawRepresentation: sig), for: SHA384.hash(data: input + Data([0]))))
      case .rs384:
        #expect(sig.count == 256)
        let n = try #require(Base64URL.decode(jwk["n"] as? String ?? ""))
        let e = try #require(Base64URL.decode(jwk["e"] as? String ?? ""))
        let pub = try _RSA.Signing.PublicKey(n: n, e: e)
        #expect(
          pub.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: sig), for: SHA384.hash(data: input), padding: .insecurePKCS1v1_5))
      }
    }
  }

  @Test func c5_assertionHeaderAndClaimsAreExactlyTheRequiredOnes() throws {
    let now = Date()
    let tokenURL = "https://auth.example.org/oauth/token?x=1"
    for key in [SMARTTestKeys.rsa.key, SMARTTestKeys.ec.key] {
      let a = try makeClientAssertion(clientID: "my-client", tokenURL: tokenURL, key: key, now: now)
      let b = try makeClientAssertion(clientID: "my-client", tokenURL: tokenURL, key: key, now: now)
      for jwt in [a, b] {
        let header = try jwtPart(jwt, 0)
        #expect(Set(header.keys) == ["alg", "kid", "typ"])
        #expect(header["alg"] as? String == key.algorithm.rawValue)
        #expect(header["kid"] as? String == key.kid)
        #expect(header["typ"] as? String == "JWT")
        let claims = try jwtPart(jwt, 1)
        #expect(Set(claims.keys) == ["iss", "sub", "aud", "exp", "jti"])
        #expect(claims["iss"] as? String == "my-client")
        #expect(claims["sub"] as? String == "my-client")
        #expect(claims["aud"] as? String == tokenURL)
        let exp = try #require(claims["exp"] as? Int)
        let delta = exp - Int(now.timeIntervalSince1970)
        #expect(delta > 0 && delta <= 300)
        // exp is written as an integer, not 1.7e9 or a fraction.
        let raw = String(decoding: try #require(Base64URL.decode(String(jwt.split(separator: ".")[1]))), as: UTF8.self)
        #expect(raw.contains("\"exp\":\(exp)") && !raw.contains("\"exp\":\(exp)."))
      }
      #expect(try jwtPart(a, 1)["jti"] as? String != jwtPart(b, 1)["jti"] as? String)
    }
  }

  @Test func keyFilesLoadWithInferredAlgorithmAndPermissionsAreChecked() throws {
    let dir = try TempDir()
    defer { dir.cleanup() }
    for (pem, key) in [SMARTTestKeys.rsa, SMARTTestKeys.ec] {
      let path = dir.path + "/\(key.algorithm.rawValue).pem"
      try SMARTKey.writePrivateKey(pem, to: path)
      let attrs = try FileManager.default.attributesOfItem(atPath: path)
      #expect((attrs[.posixPermissions] as? NSNumber)?.intValue == 0o600)
      #expect(SMARTKey.permissionWarning(path: path) == nil)
      let loaded = try SMARTKey.load(path: path, algorithm: nil, kid: nil)
      #expect(loaded.algorithm == key.algorithm)
      #expect(loaded.kid == key.kid)
      #expect(loaded.publicJWKS() == key.publicJWKS())
      #expect(try SMARTKey.load(path: path, algorithm: nil, kid: "mine").kid == "mine")
      // Never overwrite a key.
      #expect(throws: SMARTError.self) { try SMARTKey.writePrivateKey(pem, to: path) }
      // Wrong algorithm for the key type.
      let other: SMARTAlgorithm = key.algorithm == .rs384 ? .es384 : .rs384
      do {
        _ = try SMARTKey.load(path: path, algorithm: other, kid: nil)
        Issue.record("expected a key error")
      } catch let e as SMARTError {
        #expect(e.description.contains("cannot sign \(other.rawValue)"))
      }
      // C1 (issue item 1): a key readable by others draws a warning.
      chmod(path, 0o644)
      let warning = try #require(SMARTKey.permissionWarning(path: path))
      #expect(warning.contains("chmod 600") && warning.contains(path))
    }
  }

  @Test func opensslKeyFormatsLoad() throws {
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") else { return }
    let dir = try TempDir()
    defer { dir.cleanup() }
    func openssl(_ args: [String]) throws {
      let p = Process()
      p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
      p.arguments = args
      p.standardOutput = FileHandle.nullDevice
      p.standardError = FileHandle.nullDevice
      try p.run()
      p.waitUntilExit()
      try #require(p.terminationStatus == 0)
    }
    // SEC1 "EC PRIVATE KEY" and PKCS#1 "RSA PRIVATE KEY".
    try openssl(["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", dir.path + "/sec1.pem"])
    try openssl(["genrsa", "-traditional", "-out", dir.path + "/pkcs1.pem", "2048"])
    #expect(try SMARTKey.load(path: dir.path + "/sec1.pem", algorithm: nil, kid: nil).algorithm == .es384)
    #expect(try SMARTKey.load(path: dir.path + "/pkcs1.pem", algorithm: nil, kid: nil).algorithm == .rs384)
    // P-256 is refused with a clear reason.
    try openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", dir.path + "/p256.pem"])
    do {
      _ = try SMARTKey.load(path: dir.path + "/p256.pem", algorithm: nil, kid: nil)
      Issue.record("expected an error")
    } catch let e as SMARTError { #expect(e.description.contains("P-384")) }
    // A public key is refused, without echoing it.
    try openssl(["pkey", "-in", dir.path + "/sec1.pem", "-pubout", "-out", dir.path + "/pub.pem"])
    do {
      _ = try SMARTKey.load(path: dir.path + "/pub.pem", algorithm: nil, kid: nil)
      Issue.record("expected an error")
    } catch let e as SMARTError {
      #expect(e.description.contains("public key"))
      let pub = try String(contentsOfFile: dir.path + "/pub.pem", encoding: .utf8)
      for line in keyMaterialLines(pub) { #expect(!e.description.contains(line)) }
    }
  }

  @Test func privateJWKFilesLoad() throws {
    let dir = try TempDir()
    defer { dir.cleanup() }
    guard case .ec(let k) = SMARTTestKeys.ec.key.material else {
      Issue.record("not an EC key")
      return
    }
    var jwk = SMARTTestKeys.ec.key.publicJWK
    jwk["kid"] = "ec-1"
    jwk["d"] = Base64URL.encode(k.rawRepresentation)
    let single = try JSONSerialization.data(withJSONObject: jwk)
    _ = FileManager.default.createFile(atPath: dir.path + "/k.json", contents: single)
    let loaded = try SMARTKey.load(path: dir.path + "/k.json", algorithm: .es384, kid: nil)
    #expect(loaded.kid == "ec-1")
    #expect(try jwksKey(loaded)["x"] as? String == jwk["x"])
    let set = try JSONSerialization.data(withJSONObject: ["keys": [jwk]])
    _ = FileManager.default.createFile(atPath: dir.path + "/ks.json", contents: set)
    #expect(try SMARTKey.load(path: dir.path + "/ks.json", algorithm: nil, kid: nil).kid == "ec-1")
    // The public JWKS is not a private key.
    _ = FileManager.default.createFile(atPath: dir.path + "/pub.json", contents: Data(SMARTTestKeys.ec.key.publicJWKS().utf8))
    do {
      _ = try SMARTKey.load(path: dir.path + "/pub.json", algorithm: nil, kid: nil)
      Issue.record("expected an error")
    } catch let e as SMARTError {
      #expect(e.description.contains("no private key"))
      #expect(!e.description.contains(jwk["d"] ?? "-"))
    }
  }

  @Test func c6_keyDescriptionsNeverShowKeyMaterial() {
    for (pem, key) in [SMARTTestKeys.rsa, SMARTTestKeys.ec] {
      var dumped = ""
      dump(key, to: &dumped)
      let texts = [key.description, String(describing: key), String(reflecting: key), "\(key)", dumped]
      for text in texts {
        #expect(text.contains(key.kid))
        for line in keyMaterialLines(pem) { #expect(!text.contains(line)) }
        #expect(!text.contains("BEGIN"))
      }
    }
  }

  @Test func c7_grantedScopesCoverTypes() {
    #expect(SMARTScopes(granted: "system/*.rs").missing(for: ["Patient", "Observation"]).isEmpty)
    #expect(SMARTScopes(granted: "system/*.read").missing(for: []).isEmpty)
    #expect(SMARTScopes(granted: "system/Patient.read").missing(for: ["Patient", "Observation"]) == ["Observation"])
    #expect(SMARTScopes(granted: "system/Patient.rs system/Observation.cruds").missing(for: ["Patient", "Observation"]).isEmpty)
    #expect(SMARTScopes(granted: "system/Observation.c").missing(for: ["Observation"]) == ["Observation"])
    #expect(SMARTScopes(granted: "system/Observation.write").missing(for: ["Observation"]) == ["Observation"])
    #expect(SMARTScopes(granted: "patient/*.read").missing(for: ["Patient"]) == ["Patient"])
    #expect(SMARTScopes(granted: "system/Patient.rs").missing(for: []).count == 1)
    #expect(SMARTScopes(granted: "").missing(for: ["Patient"]) == ["Patient"])
  }

  @Test func c8_defaultScopeFollowsTheServer() {
    #expect(SMARTScopes.defaultScope(capabilities: ["permission-v2"], scopesSupported: []) == "system/*.rs")
    #expect(SMARTScopes.defaultScope(capabilities: ["permission-v1"], scopesSupported: []) == "system/*.read")
    #expect(SMARTScopes.defaultScope(capabilities: ["permission-v1", "permission-v2"], scopesSupported: []) == "system/*.rs")
    #expect(SMARTScopes.defaultScope(capabilities: [], scopesSupported: ["system/*.read"]) == "system/*.read")
    #expect(SMARTScopes.defaultScope(capabilities: [], scopesSupported: ["system/*.read", "system/*.rs"]) == "system/*.rs")
    #expect(SMARTScopes.defaultScope(capabilities: [], scopesSupported: []) == "system/*.rs")
  }
}
