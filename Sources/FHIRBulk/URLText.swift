// Small URL helpers that work on strings, so status URLs stay verbatim and opaque (C23).
import Foundation

enum URLText {
  /// RFC 3986 unreserved characters are left alone, everything else is percent-encoded (UTF-8).
  static func encode(_ s: String, keeping extra: Set<UInt8> = []) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for b in s.utf8 {
      if isUnreserved(b) || extra.contains(b) {
        out.unicodeScalars.append(UnicodeScalar(b))
      } else {
        out += "%" + hex2(b)
      }
    }
    return out
  }

  private static func isUnreserved(_ b: UInt8) -> Bool {
    (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39)
      || b == 0x2D || b == 0x2E || b == 0x5F || b == 0x7E
  }

  private static func hex2(_ b: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String([digits[Int(b >> 4)], digits[Int(b & 0x0F)]])
  }

  /// `scheme://host[:port]`, lower-cased, with default ports made explicit; nil if not absolute http(s).
  static func origin(_ url: String) -> String? {
    guard let c = URLComponents(string: url), let scheme = c.scheme?.lowercased(),
      scheme == "http" || scheme == "https", let host = c.host, !host.isEmpty
    else { return nil }
    let port = c.port ?? (scheme == "https" ? 443 : 80)
    return "\(scheme)://\(host.lowercased()):\(port)"
  }

  /// `host` or `host:port` (port only when not the scheme's default), for messages: never the
  /// path or query (signed URLs carry secrets there).
  static func hostPort(_ url: String) -> String? {
    guard let c = URLComponents(string: url), let host = c.host, !host.isEmpty else { return nil }
    let scheme = c.scheme?.lowercased()
    if let port = c.port, !(scheme == "https" && port == 443), !(scheme == "http" && port == 80) {
      return "\(host):\(port)"
    }
    return host
  }

  static func isAbsoluteHTTP(_ url: String) -> Bool { origin(url) != nil }

  /// Resolves `reference` (absolute or relative) against `base`.
  static func resolve(_ reference: String, against base: String) -> String? {
    if isAbsoluteHTTP(reference) { return reference }
    guard let b = URL(string: base), let u = URL(string: reference, relativeTo: b) else { return nil }
    let abs = u.absoluteString
    return isAbsoluteHTTP(abs) ? abs : nil
  }
}
