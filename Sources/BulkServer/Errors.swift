// Errors: request errors become OperationOutcomes; library errors are one clear line.

/// Errors from starting or driving the server.
public enum BulkServerError: Error, CustomStringConvertible {
  case invalidConfiguration(String)
  case dataDirectory(path: String, reason: String)
  case state(path: String, reason: String)
  case io(path: String, reason: String)

  public var description: String {
    switch self {
    case .invalidConfiguration(let why): "invalid server configuration: \(why)"
    case .dataDirectory(let path, let why): "cannot serve data from \(path): \(why)"
    case .state(let path, let why): "cannot open the state file \(path): \(why)"
    case .io(let path, let why): "cannot write \(path): \(why)"
    }
  }
}

/// A request that gets an error status and an OperationOutcome.
enum RequestError: Error, CustomStringConvertible {
  case badRequest(String)
  case notSupported(String)
  case notFound(String)
  case methodNotAllowed(String)
  case unauthorized(String)
  case forbidden(String)
  case gone(String)
  case tooManyRequests(String, retryAfter: Int)
  case transient(String)
  case server(String)

  var description: String { diagnostics }

  var status: Int {
    switch self {
    case .badRequest, .notSupported: 400
    case .notFound: 404
    case .methodNotAllowed: 405
    case .unauthorized: 401
    case .forbidden: 403
    case .gone: 410
    case .tooManyRequests: 429
    case .transient, .server: 500
    }
  }

  var code: String {
    switch self {
    case .badRequest: "invalid"
    case .notSupported: "not-supported"
    case .notFound: "not-found"
    case .methodNotAllowed: "not-supported"
    case .unauthorized: "login"
    case .forbidden: "forbidden"
    case .gone: "expired"
    case .tooManyRequests: "throttled"
    case .transient: "transient"
    case .server: "exception"
    }
  }

  var diagnostics: String {
    switch self {
    case .badRequest(let s), .notSupported(let s), .notFound(let s), .methodNotAllowed(let s), .unauthorized(let s),
      .forbidden(let s), .gone(let s), .tooManyRequests(let s, _), .transient(let s), .server(let s):
      s
    }
  }
}

enum OperationOutcome {
  static func make(severity: String = "error", code: String, diagnostics: String) -> JSON {
    .object([
      ("resourceType", .string("OperationOutcome")),
      (
        "issue",
        .array([.object([("severity", .string(severity)), ("code", .string(code)), ("diagnostics", .string(diagnostics))])])
      ),
    ])
  }
}

enum URLTools {
  static func percentDecode(_ s: String, plusIsSpace: Bool = false) -> String {
    var out: [UInt8] = []
    let b = Array(s.utf8)
    var i = 0
    func hex(_ c: UInt8) -> UInt8? {
      switch c {
      case 0x30...0x39: c - 0x30
      case 0x41...0x46: c - 0x41 + 10
      case 0x61...0x66: c - 0x61 + 10
      default: nil
      }
    }
    while i < b.count {
      if b[i] == UInt8(ascii: "%"), i + 2 < b.count, let h = hex(b[i + 1]), let l = hex(b[i + 2]) {
        out.append(h << 4 | l)
        i += 3
      } else if plusIsSpace && b[i] == UInt8(ascii: "+") {
        out.append(0x20)
        i += 1
      } else {
        out.append(b[i])
        i += 1
      }
    }
    return String(decoding: out, as: UTF8.self)
  }

  static func percentEncode(_ s: String) -> String {
    var out = ""
    for byte in s.utf8 {
      switch byte {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
        UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
        out.append(Character(Unicode.Scalar(byte)))
      default:
        out += "%" + String(byte, radix: 16, uppercase: true).leftPad(2)
      }
    }
    return out
  }

  /// Query items in order; keys and values percent-decoded ('+' read as a space, as in forms).
  static func queryItems(_ query: String?) -> [(String, String)] {
    guard let query, !query.isEmpty else { return [] }
    return query.split(separator: "&").map { part in
      let kv = part.split(separator: "=", maxSplits: 1)
      let key = percentDecode(String(kv[0]), plusIsSpace: true)
      let value = kv.count > 1 ? percentDecode(String(kv[1]), plusIsSpace: true) : ""
      return (key, value)
    }
  }
}

extension String {
  func leftPad(_ width: Int, with c: Character = "0") -> String {
    count >= width ? self : String(repeating: c, count: width - count) + self
  }
}

extension RequestError {
  /// The same error with `prefix` before its diagnostics.
  func prefixed(_ prefix: String) -> RequestError {
    switch self {
    case .badRequest(let s): .badRequest(prefix + s)
    case .notSupported(let s): .notSupported(prefix + s)
    case .notFound(let s): .notFound(prefix + s)
    case .methodNotAllowed(let s): .methodNotAllowed(prefix + s)
    case .unauthorized(let s): .unauthorized(prefix + s)
    case .forbidden(let s): .forbidden(prefix + s)
    case .gone(let s): .gone(prefix + s)
    case .tooManyRequests(let s, let r): .tooManyRequests(prefix + s, retryAfter: r)
    case .transient(let s): .transient(prefix + s)
    case .server(let s): .server(prefix + s)
    }
  }
}
