import Foundation

/// The one redaction rule shared by the shell's history, run records, logs and error text: values of secret
/// options (`--bearer-token X` and `--bearer-token=X`), `set NAME VALUE` when the name or the value looks like a
/// secret, `Bearer X` text, JWTs, PEM key material, and patient identifiers (`Patient/x`).
public enum Redaction {
  public static let placeholder = "<redacted>"
  /// Options whose value is a secret.
  public static let secretOptions: Set<String> = [
    "--bearer-token", "--token", "--password", "--client-secret", "--secret", "--access-token",
  ]

  /// Redacts a command's words (for run records and replay comparison).
  public static func words(_ words: [String], patients: Bool = true) -> [String] {
    var out: [String] = []
    var hideNext = false
    var inPEM = false
    var pemEnding = false
    for (index, word) in words.enumerated() {
      if inPEM {
        // Skip to the end marker's closing dashes (`-----END PRIVATE KEY-----` may span words).
        if word.contains("-----END") { pemEnding = true }
        if pemEnding && word.hasSuffix("-----") {
          inPEM = false
          pemEnding = false
        }
        continue
      }
      if hideNext {
        out.append(placeholder)
        hideNext = false
        continue
      }
      if word.contains("-----BEGIN") {
        out.append(placeholder)
        inPEM = !(word.contains("-----END") && word.hasSuffix("-----"))
        continue
      }
      if secretOptions.contains(word) {
        out.append(word)
        hideNext = true
        continue
      }
      if let eq = word.firstIndex(of: "="), secretOptions.contains(String(word[..<eq])) {
        out.append(String(word[...eq]) + placeholder)
        continue
      }
      if word.lowercased() == "bearer" || word.lowercased() == "authorization:" {
        out.append(word)
        hideNext = true
        continue
      }
      if word.lowercased().hasPrefix("bearer ") {
        out.append("Bearer " + placeholder)
        continue
      }
      // `set NAME VALUE`: a secret-looking name or value is not kept.
      if index == 2, words.first == "set", secretName(words[1]) || looksLikeSecret(word) {
        out.append(placeholder)
        continue
      }
      if looksLikeSecret(word) {
        out.append(placeholder)
        continue
      }
      if patients, let slash = word.firstIndex(of: "/"), word[..<slash] == "Patient", word.index(after: slash) < word.endIndex {
        out.append("Patient/" + placeholder)
        continue
      }
      out.append(word)
    }
    return out
  }

  /// True when a command line carries a secret (such lines are never written to the shell's history).
  public static func lineCarriesSecret(_ line: String) -> Bool {
    let split = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map {
      String($0).trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
    }
    return words(split, patients: false) != split || line.contains("-----BEGIN")
  }

  /// Free text (error messages, log lines): bearer tokens, JWTs and PEM blocks are replaced.
  public static func text(_ text: String) -> String {
    guard text.contains("Bearer") || text.contains("bearer") || text.contains("eyJ") || text.contains("-----BEGIN") else {
      return text
    }
    var out = text
    if let begin = out.range(of: "-----BEGIN") {
      let end = out.range(of: "-----END", range: begin.upperBound..<out.endIndex)
      let stop = end.flatMap { out.range(of: "-----", range: $0.upperBound..<out.endIndex)?.upperBound } ?? out.endIndex
      out.replaceSubrange(begin.lowerBound..<stop, with: placeholder)
    }
    var words = out.components(separatedBy: " ")
    var hideNext = false
    for i in words.indices {
      if hideNext {
        words[i] = placeholder
        hideNext = false
      } else if words[i].lowercased() == "bearer" {
        hideNext = true
      } else if looksLikeJWT(words[i]) {
        words[i] = placeholder
      }
    }
    return words.joined(separator: " ")
  }

  public static func secretName(_ name: String) -> Bool {
    let lower = name.lowercased()
    return ["tok", "secret", "password", "passwd", "pwd", "credential", "apikey", "api_key", "bearer", "jwt"].contains {
      lower.contains($0)
    }
  }

  static func looksLikeJWT(_ word: String) -> Bool {
    word.hasPrefix("eyJ") && word.count > 20
  }

  /// A JWT, or a long token-like word (≥ 24 characters of letters, digits and -_.~+/= mixing upper case, lower
  /// case and digits, with no path or URL shape).
  public static func looksLikeSecret(_ word: String) -> Bool {
    if looksLikeJWT(word) { return true }
    guard word.count >= 24, !word.contains("://"), !word.hasPrefix("/"), !word.hasPrefix("."), !word.hasPrefix("-") else {
      return false
    }
    var upper = false
    var lower = false
    var digit = false
    for scalar in word.unicodeScalars {
      switch scalar {
      case "A"..."Z": upper = true
      case "a"..."z": lower = true
      case "0"..."9": digit = true
      case "-", "_", ".", "~", "+", "/", "=": continue
      default: return false
      }
    }
    return upper && lower && digit && word.filter({ $0 == "/" }).count < 2
  }
}
