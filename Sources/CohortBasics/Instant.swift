import Foundation

/// FHIR `instant`: date, time with seconds, optional fraction, and a zone (Z or ±hh:mm).
public enum FHIRInstant {
  public static func isValid(_ s: String) -> Bool { components(s) != nil }

  /// Parses Z, offsets (`+00:00`) and fractional seconds (C41).
  public static func parse(_ s: String) -> Date? {
    guard let c = components(s) else { return nil }
    var cal = Calendar(identifier: .gregorian)
    guard let utc = TimeZone(secondsFromGMT: 0) else { return nil }
    cal.timeZone = utc
    var dc = DateComponents()
    dc.year = c.y
    dc.month = c.mo
    dc.day = c.d
    dc.hour = c.h
    dc.minute = c.mi
    dc.second = min(c.s, 59)
    guard let base = cal.date(from: dc) else { return nil }
    return base.addingTimeInterval(c.fraction - Double(c.offsetSeconds))
  }

  private struct Parts {
    var y, mo, d, h, mi, s: Int
    var fraction: Double
    var offsetSeconds: Int
  }

  private static func components(_ s: String) -> Parts? {
    let b = Array(s.utf8)
    func num(_ i: Int, _ n: Int) -> Int? {
      guard i + n <= b.count else { return nil }
      var v = 0
      for k in i..<(i + n) {
        guard b[k] >= 0x30 && b[k] <= 0x39 else { return nil }
        v = v * 10 + Int(b[k] - 0x30)
      }
      return v
    }
    func at(_ i: Int, _ c: Character) -> Bool { i < b.count && b[i] == c.asciiValue }
    guard b.count >= 20, let y = num(0, 4), at(4, "-"), let mo = num(5, 2), at(7, "-"),
      let d = num(8, 2), at(10, "T"), let h = num(11, 2), at(13, ":"), let mi = num(14, 2),
      at(16, ":"), let sec = num(17, 2)
    else { return nil }
    guard (1...12).contains(mo), (1...31).contains(d), h <= 23, mi <= 59, sec <= 60 else { return nil }
    var i = 19
    var fraction = 0.0
    if at(i, ".") {
      i += 1
      let start = i
      var scale = 0.1
      while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
        fraction += Double(b[i] - 0x30) * scale
        scale /= 10
        i += 1
      }
      guard i > start, i - start <= 9 else { return nil }
    }
    var offset = 0
    if at(i, "Z") {
      i += 1
    } else if at(i, "+") || at(i, "-") {
      let sign = at(i, "-") ? -1 : 1
      guard let oh = num(i + 1, 2), at(i + 3, ":"), let om = num(i + 4, 2), oh <= 14, om <= 59 else {
        return nil
      }
      offset = sign * (oh * 3600 + om * 60)
      i += 6
    } else {
      return nil
    }
    guard i == b.count else { return nil }
    return Parts(y: y, mo: mo, d: d, h: h, mi: mi, s: sec, fraction: fraction, offsetSeconds: offset)
  }
}

/// Parses a FHIR instant (`2024-01-15T10:00:00Z`, `…00.123+02:00`); nil when it is not one.
public func parseInstant(_ text: String) -> Date? { FHIRInstant.parse(text) }

/// Orders two FHIR instants by the moment they name (`Z`, offsets and fractional seconds); text order when either is
/// not an instant.
public func instantOrder(_ a: String, _ b: String) -> ComparisonResult {
  if let x = parseInstant(a), let y = parseInstant(b) {
    return x < y ? .orderedAscending : (x > y ? .orderedDescending : .orderedSame)
  }
  return a < b ? .orderedAscending : (a > b ? .orderedDescending : .orderedSame)
}

/// Current UTC time as an ISO 8601 string with seconds (local bookkeeping only, never a watermark).
/// `COHORT_NOW` pins it (golden transcripts and replays compare output byte for byte).
public func isoNow() -> String {
  if let pinned = ProcessInfo.processInfo.environment["COHORT_NOW"], !pinned.isEmpty { return pinned }
  let formatter = ISO8601DateFormatter()
  formatter.formatOptions = [.withInternetDateTime]
  return formatter.string(from: Date())
}
