import Foundation

/// FHIR `instant`: date, time with seconds, optional fraction, and a zone (Z or ±hh:mm).
public enum FHIRInstant {
  public static func isValid(_ s: String) -> Bool { components(s) != nil }

  /// Parses Z, offsets (`+00:00`) and fractional seconds (C41).
  /// Pure arithmetic (days from the civil date, proleptic Gregorian; a day past the month's end rolls over, as a
  /// lenient calendar does): no `Calendar`, whose time zone lookup maps ICU's code and data into the process.
  public static func parse(_ s: String) -> Date? {
    guard let c = components(s) else { return nil }
    let days = Int(CivilDate.days(year: Int64(c.y), month: Int64(c.mo), day: Int64(c.d)))
    let seconds = days * 86_400 + c.h * 3_600 + c.mi * 60 + min(c.s, 59)
    return Date(timeIntervalSince1970: Double(seconds) + c.fraction - Double(c.offsetSeconds))
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
  return isoUTC(Date())
}

/// `date` in UTC as `yyyy-MM-ddTHH:mm:ssZ`, or with milliseconds (`…:ss.SSSZ`, rounded), the forms of Foundation's
/// `ISO8601DateFormatter` with `.withInternetDateTime` (and `.withFractionalSeconds`) — without it: that formatter
/// creates an ICU locale, which maps ≈ 6 MB of ICU's code and data into every process that only needed a timestamp.
public func isoUTC(_ date: Date, milliseconds: Bool = false) -> String {
  let t = date.timeIntervalSince1970
  var seconds: Int64
  var millis: Int64 = 0
  if milliseconds {
    // To the nearest millisecond (a binary double is rarely a whole number of them), then split.
    let total = Int64((t * 1000).rounded())
    seconds = total >= 0 ? total / 1000 : (total - 999) / 1000
    millis = total - seconds * 1000
  } else {
    seconds = Int64(t.rounded(.down))
  }
  var days = seconds / 86_400
  seconds -= days * 86_400
  if seconds < 0 {
    seconds += 86_400
    days -= 1
  }
  let (year, month, day) = CivilDate.date(days: days)
  func pad(_ n: Int64, _ width: Int) -> String {
    let digits = String(n)
    return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
  }
  var text = pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) + "T" + pad(seconds / 3_600, 2) + ":"
    + pad(seconds / 60 % 60, 2) + ":" + pad(seconds % 60, 2)
  if milliseconds { text += "." + pad(millis, 3) }
  return text + "Z"
}

/// Days since 1970-01-01 ↔ civil dates of the proleptic Gregorian calendar, by arithmetic (H. Hinnant's
/// `days_from_civil` / `civil_from_days`): no `Calendar`, no time zone, no ICU. A day past the month's end rolls
/// over into the next month, as a lenient calendar does.
public enum CivilDate {
  public static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let mp = (month + 9) % 12
    let doy = (153 * mp + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
  }

  public static func date(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
  }
}
