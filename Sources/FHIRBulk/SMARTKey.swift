// The client's private signing key for SMART Backend Services (C3, C4): loaded from a PEM or a
// private JWK file that stays where it is (never copied), or generated for `keygen`.
import Crypto
import Foundation
import _CryptoExtras

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The two JWS algorithms SMART Backend Services requires clients to support (C4).
public enum SMARTAlgorithm: String, Sendable, CaseIterable, Codable {
  case rs384 = "RS384"
  case es384 = "ES384"

  /// Parses `RS384` / `ES384` (case-insensitive).
  public init?(name: String) {
    guard let a = SMARTAlgorithm(rawValue: name.uppercased()) else { return nil }
    self = a
  }
}

/// A private signing key with its algorithm and `kid`. Its descriptions never show key material.
public struct SMARTKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
  enum Material: Sendable {
    case rsa(_RSA.Signing.PrivateKey)
    case ec(P384.Signing.PrivateKey)
  }

  let material: Material
  public var algorithm: SMARTAlgorithm
  public var kid: String

  init(material: Material, kid: String?) {
    self.material = material
    switch material {
    case .rsa: algorithm = .rs384
    case .ec: algorithm = .es384
    }
    self.kid = ""
    self.kid = kid ?? thumbprint
  }

  public var description: String { "SMARTKey(\(algorithm.rawValue), kid: \(kid))" }
  public var debugDescription: String { description }
  public var customMirror: Mirror { Mirror(self, children: ["algorithm": algorithm, "kid": kid]) }

  // MARK: Loading

  /// Reads a private key from a PEM file (PKCS#8, SEC1 `EC PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`)
  /// or a private JWK / single-key JWKS file. `algorithm` nil: inferred from the key type (RSA →
  /// RS384, P-384 → ES384). `kid` nil: the JWK's own `kid`, else the RFC 7638 thumbprint.
  public static func load(path: String, algorithm: SMARTAlgorithm? = nil, kid: String? = nil) throws -> SMARTKey {
    guard let data = FileManager.default.contents(atPath: path) else {
      let reason = FileManager.default.fileExists(atPath: path) ? "the file is not readable" : "no such file"
      throw SMARTError.key(path: path, reason: reason)
    }
    guard data.count <= 1 << 20 else { throw SMARTError.key(path: path, reason: "the file is larger than 1 MB") }
    let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    var key: SMARTKey
    if text.hasPrefix("{") {
      key = try fromJWK(data, path: path, kid: kid)
    } else if text.contains("-----BEGIN") {
      key = try fromPEM(text, path: path, kid: kid)
    } else {
      throw SMARTError.key(path: path, reason: "neither a PEM private key nor a JSON Web Key")
    }
    if let algorithm, algorithm != key.algorithm {
      let kind = key.algorithm == .rs384 ? "an RSA key" : "a P-384 key"
      throw SMARTError.key(path: path, reason: "\(kind) cannot sign \(algorithm.rawValue); use --alg \(key.algorithm.rawValue)")
    }
    if let kid {
      guard !kid.isEmpty else { throw SMARTError.key(path: path, reason: "the kid is empty") }
      key.kid = kid
    }
    return key
  }

  /// A warning when the key file can be read by the group or others (nil when it is private).
  public static func permissionWarning(path: String) -> String? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    let mode = Int(st.st_mode) & 0o777
    guard mode & 0o077 != 0 else { return nil }
    return "the private key \(path) can be read by other users (mode \(String(mode, radix: 8))); run: chmod 600 \(path)"
  }

  static func fromPEM(_ text: String, path: String, kid: String?) throws -> SMARTKey {
    if text.contains("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED") {
      throw SMARTError.key(path: path, reason: "the key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN)")
    }
    if text.contains("-----BEGIN PUBLIC KEY") && !text.contains("PRIVATE KEY") {
      throw SMARTError.key(path: path, reason: "this is a public key; the client needs the private key (register the public one)")
    }
    if text.contains("-----BEGIN EC PRIVATE KEY") {
      guard let k = try? P384.Signing.PrivateKey(pemRepresentation: text) else {
        throw SMARTError.key(path: path, reason: "the EC key is not on curve P-384 (ES384 needs P-384)")
      }
      return SMARTKey(material: .ec(k), kid: kid)
    }
    if text.contains("-----BEGIN RSA PRIVATE KEY") {
      return SMARTKey(material: .rsa(try rsaFromPEM(text, path: path)), kid: kid)
    }
    guard text.contains("-----BEGIN PRIVATE KEY") else {
      throw SMARTError.key(path: path, reason: "no PRIVATE KEY block in the PEM file")
    }
    if let k = try? P384.Signing.PrivateKey(pemRepresentation: text) {
      return SMARTKey(material: .ec(k), kid: kid)
    }
    if let k = try? _RSA.Signing.PrivateKey(pemRepresentation: text) {
      return SMARTKey(material: .rsa(k), kid: kid)
    }
    if (try? _RSA.Signing.PrivateKey(unsafePEMRepresentation: text)) != nil {
      throw SMARTError.key(path: path, reason: "the RSA key is shorter than 2048 bits")
    }
    throw SMARTError.key(path: path, reason: "not an RSA or P-384 private key (RS384 and ES384 are supported)")
  }

  private static func rsaFromPEM(_ text: String, path: String) throws -> _RSA.Signing.PrivateKey {
    if let k = try? _RSA.Signing.PrivateKey(pemRepresentation: text) { return k }
    if (try? _RSA.Signing.PrivateKey(unsafePEMRepresentation: text)) != nil {
      throw SMARTError.key(path: path, reason: "the RSA key is shorter than 2048 bits")
    }
    throw SMARTError.key(path: path, reason: "the RSA private key cannot be read")
  }

  static func fromJWK(_ data: Data, path: String, kid: String?) throws -> SMARTKey {
    guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
      throw SMARTError.key(path: path, reason: "the JSON Web Key is not a JSON object")
    }
    var jwk = object
    if let keys = object["keys"] as? [[String: Any]] {
      let privateKeys = keys.filter { $0["d"] != nil && (kid == nil || $0["kid"] as? String == kid) }
      guard privateKeys.count == 1, let only = privateKeys.first else {
        throw SMARTError.key(
          path: path,
          reason: privateKeys.isEmpty
            ? "the JWKS holds no private key\(kid.map { " with kid \($0)" } ?? "")"
            : "the JWKS holds \(privateKeys.count) private keys; pick one with --kid")
      }
      jwk = only
    }
    func bytes(_ name: String) throws -> Data {
      guard let s = jwk[name] as? String, let d = Base64URL.decode(s), !d.isEmpty else {
        throw SMARTError.key(path: path, reason: "the JWK lacks a valid '\(name)' member")
      }
      return d
    }
    guard jwk["d"] != nil else {
      throw SMARTError.key(path: path, reason: "the JWK is a public key (no 'd'); the client needs the private key")
    }
    let jwkKid = kid ?? (jwk["kid"] as? String).flatMap { $0.isEmpty ? nil : $0 }
    switch jwk["kty"] as? String {
    case "RSA":
      do {
        let k = try _RSA.Signing.PrivateKey(
          n: try bytes("n"), e: try bytes("e"), d: try bytes("d"), p: try bytes("p"), q: try bytes("q"))
        return SMARTKey(material: .rsa(k), kid: jwkKid)
      } catch let e as SMARTError {
        throw e
      } catch {
        throw SMARTError.key(path: path, reason: "the RSA JWK is not a usable key of at least 2048 bits")
      }
    case "EC":
      guard jwk["crv"] as? String == "P-384" else {
        throw SMARTError.key(path: path, reason: "the EC JWK must use crv P-384 (ES384)")
      }
      let d = try bytes("d")
      guard let k = try? P384.Signing.PrivateKey(rawRepresentation: d) else {
        throw SMARTError.key(path: path, reason: "the EC JWK's 'd' is not a P-384 private key")
      }
      if let x = jwk["x"] as? String, let y = jwk["y"] as? String,
        Base64URL.encode(k.publicKey.rawRepresentation) != Base64URL.encode(
          (Base64URL.decode(x) ?? Data()) + (Base64URL.decode(y) ?? Data()))
      {
        throw SMARTError.key(path: path, reason: "the EC JWK's x/y do not belong to its 'd'")
      }
      return SMARTKey(material: .ec(k), kid: jwkKid)
    default:
      throw SMARTError.key(path: path, reason: "unsupported JWK kty (RSA or EC P-384 are supported)")
    }
  }

  // MARK: Generation

  /// A new key for `keygen`: PKCS#8 PEM text (write it with `writePrivateKey`) and the key.
  /// RSA keys are 2048 bits. The kid is the RFC 7638 thumbprint.
  public static func generate(_ algorithm: SMARTAlgorithm) throws -> (pem: String, key: SMARTKey) {
    switch algorithm {
    case .es384:
      let k = P384.Signing.PrivateKey()
      return (k.pemRepresentation, SMARTKey(material: .ec(k), kid: nil))
    case .rs384:
      do {
        let k = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        return (k.pkcs8PEMRepresentation, SMARTKey(material: .rsa(k), kid: nil))
      } catch {
        throw SMARTError.signing("RSA key generation failed")
      }
    }
  }

  /// Writes a private key file with mode 0600; never overwrites an existing file.
  public static func writePrivateKey(_ pem: String, to path: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
      let why = errno == EEXIST ? "the file already exists (refusing to overwrite a key)" : String(cString: strerror(errno))
      throw SMARTError.key(path: path, reason: why)
    }
    defer { close(fd) }
    _ = fchmod(fd, 0o600)
    var bytes = Array(pem.utf8)
    if bytes.last != 0x0A { bytes.append(0x0A) }
    var offset = 0
    while offset < bytes.count {
      let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
      if n < 0 {
        if errno == EINTR { continue }
        let why = String(cString: strerror(errno))
        unlink(path)
        throw SMARTError.key(path: path, reason: why)
      }
      offset += n
    }
  }

  // MARK: Public JWK

  /// The public members of the JWK (RFC 7517): kty, kid, alg, use and n/e or crv/x/y — never d/p/q (C3).
  public var publicJWK: [String: String] {
    var jwk = publicMembers
    jwk["kid"] = kid
    jwk["alg"] = algorithm.rawValue
    jwk["use"] = "sig"
    return jwk
  }

  /// `{"keys":[…]}` with the one public key, ready to register with the server (C3).
  public func publicJWKS() -> String {
    let object: [String: Any] = ["keys": [publicJWK]]
    guard
      let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted])
    else { return "{\"keys\":[]}" }
    return String(decoding: data, as: UTF8.self)
  }

  /// The bare public-key members (the thumbprint's input).
  private var publicMembers: [String: String] {
    switch material {
    case .ec(let k):
      let raw = k.publicKey.rawRepresentation
      return [
        "kty": "EC", "crv": "P-384", "x": Base64URL.encode(raw.prefix(48)), "y": Base64URL.encode(raw.suffix(from: raw.startIndex + 48)),
      ]
    case .rsa(let k):
      let p = (try? k.publicKey.getKeyPrimitives()) ?? .init(modulus: Data(), publicExponent: Data())
      return ["kty": "RSA", "n": Base64URL.encode(Self.unsigned(p.modulus)), "e": Base64URL.encode(Self.unsigned(p.publicExponent))]
    }
  }

  private static func unsigned(_ d: Data) -> Data {
    let trimmed = d.drop { $0 == 0 }
    return trimmed.isEmpty ? Data([0]) : Data(trimmed)
  }

  /// RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key.
  public var thumbprint: String {
    let m = publicMembers
    let canonical: String
    if m["kty"] == "EC" {
      canonical = #"{"crv":"P-384","kty":"EC","x":"\#(m["x"] ?? "")","y":"\#(m["y"] ?? "")"}"#
    } else {
      canonical = #"{"e":"\#(m["e"] ?? "")","kty":"RSA","n":"\#(m["n"] ?? "")"}"#
    }
    return Base64URL.encode(Data(SHA256.hash(data: Data(canonical.utf8))))
  }

  // MARK: Signing

  /// JWS signature over `input` (RS384: PKCS#1 v1.5 with SHA-384; ES384: raw r‖s, 96 bytes).
  func sign(_ input: Data) throws -> Data {
    let digest = SHA384.hash(data: input)
    switch material {
    case .rsa(let k):
      do {
        return try k.signature(for: digest, padding: .insecurePKCS1v1_5).rawRepresentation
      } catch {
        throw SMARTError.signing("RSA signing failed")
      }
    case .ec(let k):
      do {
        return try k.signature(for: digest).rawRepresentation
      } catch {
        throw SMARTError.signing("ECDSA signing failed")
      }
    }
  }
}

/// base64url without padding (RFC 7515 §2).
enum Base64URL {
  static func encode(_ d: Data) -> String {
    d.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
      .replacingOccurrences(of: "=", with: "")
  }

  static func decode(_ s: String) -> Data? {
    var t = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while t.count % 4 != 0 { t += "=" }
    return Data(base64Encoded: t)
  }
}
