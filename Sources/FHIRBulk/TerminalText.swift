// Terminal safety (issue 11 item 8): text that came from a server is escaped before it reaches a
// terminal, a log or a database, so a server cannot move the cursor, recolour the screen or print
// a fake "committed" line.

public enum TerminalText {
  /// Replaces control characters — C0 (U+0000–U+001F) except tab, DEL (U+007F) and C1
  /// (U+0080–U+009F) — with a visible `\u{XX}` form. Everything else is kept as is.
  public static func escape(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: isControl) else { return text }
    var out = String.UnicodeScalarView()
    for u in text.unicodeScalars {
      if isControl(u) {
        let hex = String(u.value, radix: 16, uppercase: true)
        out.append(contentsOf: "\\u{\(hex.count < 2 ? "0" + hex : hex)}".unicodeScalars)
      } else {
        out.append(u)
      }
    }
    return String(out)
  }

  /// True when `text` holds a character `escape` would replace.
  public static func needsEscaping(_ text: String) -> Bool { text.unicodeScalars.contains(where: isControl) }

  static func isControl(_ u: Unicode.Scalar) -> Bool {
    let v = u.value
    return (v < 0x20 && v != 0x09) || v == 0x7F || (v >= 0x80 && v <= 0x9F)
  }
}

extension BulkEvent {
  /// The event with every server-provided text escaped (`TerminalText.escape`).
  public var escaped: BulkEvent {
    let e = TerminalText.escape
    switch self {
    case .kickoff(var k):
      k.url = e(k.url)
      k.statusURL = k.statusURL.map(e)
      k.errorBody = k.errorBody.map(e)
      k.softwareName = k.softwareName.map(e)
      k.softwareVersion = k.softwareVersion.map(e)
      k.softwareReleaseDate = k.softwareReleaseDate.map(e)
      k.fhirVersion = k.fhirVersion.map(e)
      return .kickoff(k)
    case .statusProgress(let x, let ra, let next): return .statusProgress(xProgress: x.map(e), retryAfter: ra.map(e), nextPoll: next)
    case .retry(let reason, let after): return .retry(reason: e(reason), after: after)
    case .statusComplete(let t): return .statusComplete(transactionTime: e(t))
    case .manifestComplete(var s):
      s.transactionTime = e(s.transactionTime)
      return .manifestComplete(s)
    case .downloadRequest(let url, let kind, let type): return .downloadRequest(url: e(url), kind: kind, type: e(type))
    case .downloadProgress(let url, let bytes): return .downloadProgress(url: e(url), bytes: bytes)
    case .downloadComplete(var f):
      f.url = e(f.url)
      return .downloadComplete(f)
    case .downloadError(let url, let message): return .downloadError(url: e(url), message: e(message))
    case .warning(let w): return .warning(e(w))
    case .information(let w): return .information(e(w))
    case .exportComplete: return self
    }
  }
}
