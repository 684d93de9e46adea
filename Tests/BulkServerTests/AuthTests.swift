import CohortTestSupport
import AsyncHTTPClient
import Clocks
import Crypto
import Foundation
import Testing
import _CryptoExtras

@testable import BulkServer

/// A test client key pair and a client assertion signer.
struct TestClient {
  enum Key {
    case rsa(_RSA.Signing.PrivateKey)
    case ec(P384.Signing.PrivateKey)
  }
  var id: String
  var kid: String
  var key: Key

  static func b64(_ d: Data) -> String { Base64URL.encode(d) }

  var jwks: Data {
    let jwk: [String: Any]
    switch key {
    case .rsa(let k):
      let p = try! k.publicKey.getKeyPrimitives()
      jwk = ["kty": "RSA", "kid": kid, "alg": "RS384", "n": TestClient.b64(p.modulus), "e": TestClient.b64(p.publicExponent)]
    case .ec(let k):
      let raw = k.publicKey.rawRepresentation
      jwk = ["kty": "EC", "kid": kid, "alg": "ES384", "crv": "P-384", "x": TestClient.b64(raw.prefix(48)), "y": TestClient.b64(raw.suffix(48))]
    }
    return try! JSONSerialization.data(withJSONObject: ["keys": [jwk]])
  }

  func assertion(aud: String, exp: Int? = nil, jti: String = UUID().uuidString, iss: String? = nil) throws -> String {
    let alg: String
    switch key {
    case .rsa: alg = "RS384"
    case .ec: alg = "ES384"
    }
    let header = try JSONSerialization.data(withJSONObject: ["alg": alg, "kid": kid, "typ": "JWT"], options: [.sortedKeys])
    let now = Int(Date().timeIntervalSince1970)
    let claims = try JSONSerialization.data(
      withJSONObject: ["iss": iss ?? id, "sub": iss ?? id, "aud": aud, "exp": exp ?? now + 240, "jti": jti], options: [.sortedKeys])
    let input = TestClient.b64(header) + "." + TestClient.b64(claims)
    let digest = SHA384.hash(data: Data(input.utf8))
    let signature: Data
    switch key {
    case .rsa(let k): signature = try k.signature(for: digest, padding: .insecurePKCS1v1_5).rawRepresentation
    case .ec(let k): signature = try k.signature(for: digest).rawRepresentation
    }
    return input + "." + TestClient.b64(signature)
  }
}

func tokenRequest(_ url: String, assertion: String, scope: String) async throws -> HTTPReply {
  func enc(_ s: String) -> String { URLTools.percentEncode(s) }
  let body = "grant_type=client_credentials&scope=\(enc(scope))"
    + "&client_assertion_type=\(enc("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"))&client_assertion=\(enc(assertion))"
  return try await HTTP.send(
    url, method: .POST, headers: ["Content-Type": "application/x-www-form-urlencoded"], body: Data(body.utf8))
}

@Suite struct AuthTests {
  /// C12, C43: a static bearer token guards kick-off, status, files and DELETE; requiresAccessToken follows.
  @Test func bearerToken() async throws {
    try await withServer({ $0.auth = .bearer(token: "s3cret") }) { s in
      let url = s.baseURL + "/$export?_type=Patient"
      let denied = try await HTTP.kickoff(url)
      #expect(denied.status == 401)
      #expect(denied.header("WWW-Authenticate") == "Bearer")
      #expect(denied.issue?.code == "login")
      #expect(try await HTTP.kickoff(url, extra: ["Authorization": "Bearer wrong"]).status == 401)
      #expect(try await HTTP.get(s.baseURL + "/metadata").status == 200)
      let auth = ["Authorization": "Bearer s3cret"]
      let k = try await HTTP.kickoff(url, extra: auth)
      let location = try #require(k.header("Content-Location"))
      #expect(try await HTTP.get(location).status == 401)
      let (m, _) = try await HTTP.poll(location, headers: auth)
      #expect(m.json["requiresAccessToken"] as? Bool == true)
      let file = try #require((m.json["output"] as? [[String: Any]])?.first?["url"] as? String)
      #expect(try await HTTP.get(file).status == 401)
      #expect(try await HTTP.get(file, headers: auth).status == 200)
      #expect(try await HTTP.send(location, method: .DELETE).status == 401)
      #expect(try await HTTP.get(s.baseURL + "/Group/all-patients").status == 401)
      #expect(try await HTTP.send(location, method: .DELETE, headers: auth).status == 202)
      let log = await s.requestLog
      #expect(log.contains { $0.path.hasPrefix("/files/") && $0.header("authorization") == "Bearer s3cret" })
    }
  }

  /// C1–C11: SMART Backend Services with RS384 and ES384 assertions.
  @Test func smartBackendServices() async throws {
    let rsa = TestClient(id: "rsa-client", kid: "r1", key: .rsa(try _RSA.Signing.PrivateKey(keySize: .bits2048)))
    let ec = TestClient(id: "ec-client", kid: "e1", key: .ec(P384.Signing.PrivateKey()))
    // Token lifetimes run on a virtual clock: expiry is tested to the tenth of a second, in no real time.
    let clock = TestClock()
    try await withServer({
      $0.auth = .smart(clients: [rsa.id: rsa.jwks, ec.id: ec.jwks])
      $0.tokenLifetime = 300
      $0.tokenClock = clock
    }) { s in
      let conf = try await HTTP.get(s.baseURL + "/.well-known/smart-configuration")
      #expect(conf.status == 200)
      let tokenURL = try #require(conf.json["token_endpoint"] as? String)
      #expect(tokenURL == s.baseURL + "/auth/token")
      #expect((conf.json["token_endpoint_auth_signing_alg_values_supported"] as? [String]) == ["RS384", "ES384"])
      #expect((conf.json["capabilities"] as? [String])?.contains("client-confidential-asymmetric") == true)

      for client in [rsa, ec] {
        let r = try await tokenRequest(tokenURL, assertion: try client.assertion(aud: tokenURL), scope: "system/*.read openid")
        #expect(r.status == 200, "\(client.id): \(r.text)")
        #expect(r.json["token_type"] as? String == "bearer")
        #expect(r.json["scope"] as? String == "system/*.read")  // only what is allowed is granted
        #expect(r.json["expires_in"] as? Int == 300)
        let token = try #require(r.json["access_token"] as? String)
        let k = try await HTTP.kickoff(s.baseURL + "/$export?_type=Patient", extra: ["Authorization": "Bearer " + token])
        #expect(k.status == 202)
      }
      // Errors per RFC 6749 §5.2.
      let badAud = try await tokenRequest(tokenURL, assertion: try ec.assertion(aud: "https://elsewhere/token"), scope: "system/*.read")
      #expect(badAud.status == 401)
      #expect(badAud.json["error"] as? String == "invalid_client")
      #expect((badAud.json["error_description"] as? String)?.contains("aud") == true)
      let stranger = try await tokenRequest(tokenURL, assertion: try ec.assertion(aud: tokenURL, iss: "nobody"), scope: "system/*.read")
      #expect(stranger.json["error"] as? String == "invalid_client")
      let now = Int(Date().timeIntervalSince1970)
      let late = try await tokenRequest(tokenURL, assertion: try ec.assertion(aud: tokenURL, exp: now + 3600), scope: "system/*.read")
      #expect(late.json["error"] as? String == "invalid_grant")
      let assertion = try rsa.assertion(aud: tokenURL, jti: "once")
      #expect(try await tokenRequest(tokenURL, assertion: assertion, scope: "system/*.read").status == 200)
      let replay = try await tokenRequest(tokenURL, assertion: assertion, scope: "system/*.read")
      #expect(replay.json["error"] as? String == "invalid_grant")
      let scope = try await tokenRequest(tokenURL, assertion: try ec.assertion(aud: tokenURL), scope: "user/*.write")
      #expect(scope.status == 400)
      #expect(scope.json["error"] as? String == "invalid_scope")
      // A forged signature (EC key, RSA client's kid).
      let forged = try TestClient(id: rsa.id, kid: "r1", key: .ec(P384.Signing.PrivateKey())).assertion(aud: tokenURL)
      #expect(try await tokenRequest(tokenURL, assertion: forged, scope: "system/*.read").json["error"] as? String == "invalid_client")

      // Narrow scopes: Patient only.
      let narrow = try await tokenRequest(tokenURL, assertion: try ec.assertion(aud: tokenURL), scope: "system/Patient.rs")
      let narrowToken = try #require(narrow.json["access_token"] as? String)
      let forbidden = try await HTTP.kickoff(s.baseURL + "/$export?_type=Observation", extra: ["Authorization": "Bearer " + narrowToken])
      #expect(forbidden.status == 403)
      // Tokens expire (--token-lifetime 300): just before, the token still works; then every Bulk Data request is 401.
      await clock.advance(by: .milliseconds(299_900))
      let before = try await HTTP.kickoff(s.baseURL + "/$export?_type=Patient", extra: ["Authorization": "Bearer " + narrowToken])
      #expect(before.status == 202)
      await clock.advance(by: .milliseconds(200))
      let expired = try await HTTP.kickoff(s.baseURL + "/$export", extra: ["Authorization": "Bearer " + narrowToken])
      #expect(expired.status == 401)
      #expect(expired.issue?.diagnostics.contains("expired") == true)
    }
  }
}
