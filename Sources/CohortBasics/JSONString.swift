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
