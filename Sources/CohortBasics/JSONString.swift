/// JSON string literals, written once for every JSON writer (result tables, log.ndjson, view rows): `"`, `\` and
/// control characters escaped (`\n`, `\r`, `\t`, else `\u00XX`); everything else, non-ASCII included, as it is.
public enum JSONString {
  /// Appends `s` as a JSON string literal (quotes included).
  public static func write(_ s: String, to out: inout String) {
    out += "\""
    var needsEscape = false
    for c in s.utf8 where c < 0x20 || c == 0x22 || c == 0x5C {
      needsEscape = true
      break
    }
    if !needsEscape {
      out += s
    } else {
      for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
          if u.value < 0x20 {
            let hex = String(u.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
          } else {
            out.unicodeScalars.append(u)
          }
        }
      }
    }
    out += "\""
  }

  /// `s` as a JSON string literal (quotes included).
  public static func quote(_ s: String) -> String {
    var out = ""
    write(s, to: &out)
    return out
  }
}

// MARK: - Reading

extension JSONString {
  /// How strictly a reader takes a string body. Every reader decodes the same escapes; they differ in what they
  /// forgive: the Group reader refuses anything that is not well-formed, the test server refuses raw control
  /// characters, and the FHIRPath reader (resources already verified) refuses only what it cannot decode.
  public struct Unescaping: Sendable {
    /// A raw byte below 0x20 inside the string is an error.
    public var rejectsControlCharacters: Bool
    /// A high surrogate not followed by a low one, or a lone low surrogate, is an error (else it becomes U+FFFD).
    public var rejectsLoneSurrogates: Bool

    public init(rejectsControlCharacters: Bool, rejectsLoneSurrogates: Bool) {
      self.rejectsControlCharacters = rejectsControlCharacters
      self.rejectsLoneSurrogates = rejectsLoneSurrogates
    }

    public static let strict = Unescaping(rejectsControlCharacters: true, rejectsLoneSurrogates: true)
    public static let lenient = Unescaping(rejectsControlCharacters: false, rejectsLoneSurrogates: false)
  }

  public enum UnescapeError: Error, Equatable, Sendable {
    case controlCharacter
    /// A backslash followed by a character that is no JSON escape.
    case invalidEscape
    /// `\u` followed by something other than four hex digits.
    case invalidUnicodeEscape
    /// The input ended inside a `\u` escape.
    case truncatedUnicodeEscape
    case loneSurrogate
    /// The input ended before the closing quote.
    case unterminated
  }

  /// Decodes the body of a JSON string, from `start` (just after its opening quote) through its closing quote, with
  /// its escapes: `\" \\ \/ \b \f \n \r \t` and `\uXXXX` (surrogate pairs joined). Returns the decoded UTF-8 bytes
  /// (not validated: raw bytes are copied as they are) and the index just after the closing quote. The one decoder
  /// behind the package's JSON readers (the Group reader, the test server, FHIRPath), which keep their own fast path
  /// for strings without escapes.
  public static func unescape(
    _ bytes: UnsafeRawBufferPointer, from start: Int, end: Int? = nil, _ rules: Unescaping
  ) throws(UnescapeError) -> (utf8: [UInt8], next: Int) {
    let end = end ?? bytes.count
    var out: [UInt8] = []
    var i = start
    func hex4() throws(UnescapeError) -> UInt32 {
      guard i + 4 <= end else { throw .truncatedUnicodeEscape }
      var v: UInt32 = 0
      for _ in 0..<4 {
        let c = bytes[i]
        let d: UInt32
        switch c {
        case 0x30...0x39: d = UInt32(c - 0x30)
        case 0x41...0x46: d = UInt32(c - 0x41 + 10)
        case 0x61...0x66: d = UInt32(c - 0x61 + 10)
        default: throw .invalidUnicodeEscape
        }
        v = v << 4 | d
        i += 1
      }
      return v
    }
    while i < end {
      let c = bytes[i]
      i += 1
      if c == 0x22 { return (out, i) }
      if c < 0x20, rules.rejectsControlCharacters { throw .controlCharacter }
      guard c == 0x5C else {
        out.append(c)
        continue
      }
      guard i < end else { break }
      let e = bytes[i]
      i += 1
      switch e {
      case 0x22, 0x5C, 0x2F: out.append(e)
      case UInt8(ascii: "b"): out.append(0x08)
      case UInt8(ascii: "f"): out.append(0x0C)
      case UInt8(ascii: "n"): out.append(0x0A)
      case UInt8(ascii: "r"): out.append(0x0D)
      case UInt8(ascii: "t"): out.append(0x09)
      case UInt8(ascii: "u"):
        var scalar = try hex4()
        if (0xD800...0xDBFF).contains(scalar) {
          if i + 1 < end, bytes[i] == 0x5C, bytes[i + 1] == UInt8(ascii: "u") {
            i += 2
            let low = try hex4()
            if rules.rejectsLoneSurrogates, !(0xDC00...0xDFFF).contains(low) { throw .loneSurrogate }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + ((low &- 0xDC00) & 0x3FF)
          } else if rules.rejectsLoneSurrogates {
            throw .loneSurrogate
          }
        }
        guard let u = Unicode.Scalar(scalar) else {
          if rules.rejectsLoneSurrogates { throw .loneSurrogate }
          out.append(contentsOf: [0xEF, 0xBF, 0xBD])  // U+FFFD
          continue
        }
        out.append(contentsOf: Array(String(Character(u)).utf8))
      default: throw .invalidEscape
      }
    }
    throw .unterminated
  }
}
