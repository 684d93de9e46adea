// Instants as whole seconds since 1970 (UTC), formatted as FHIR instants.

import CohortBasics
import Foundation

enum Instant {
  /// Formats seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (`CohortBasics.isoUTC`).
  static func format(_ seconds: Int) -> String { isoUTC(Date(timeIntervalSince1970: TimeInterval(seconds))) }

  /// `YYYY-MM-DD` of an instant.
  static func formatDate(_ seconds: Int) -> String { String(format(seconds).prefix(10)) }

  static func pad(_ v: Int, _ width: Int) -> String {
    let s = String(v)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
  }

  /// Parses a FHIR instant (`YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)`); seconds are floored.
  /// With `allowPartial`, a date (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`) or dateTime without zone is also read (as UTC).
  static func parse(_ text: String, allowPartial: Bool = false) -> Int? {
    let b = Array(text.utf8)
    func num(_ from: Int, _ len: Int) -> Int? {
      guard from + len <= b.count else { return nil }
      var v = 0
      for i in from..<from + len {
        guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
        v = v * 10 + Int(b[i] - 0x30)
      }
      return v
    }
    guard let year = num(0, 4) else { return nil }
    if allowPartial && b.count == 4 { return days(year: year, month: 1, day: 1) * 86400 }
    guard b.count >= 7, b[4] == UInt8(ascii: "-"), let month = num(5, 2), (1...12).contains(month) else { return nil }
    if allowPartial && b.count == 7 { return days(year: year, month: month, day: 1) * 86400 }
    guard b.count >= 10, b[7] == UInt8(ascii: "-"), let day = num(8, 2), (1...31).contains(day) else { return nil }
    let dayStart = days(year: year, month: month, day: day) * 86400
    if allowPartial && b.count == 10 { return dayStart }
    guard b.count >= 19, b[10] == UInt8(ascii: "T"), b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"),
      let hh = num(11, 2), let mm = num(14, 2), let ss = num(17, 2), hh < 24, mm < 60, ss < 61
    else { return nil }
    var i = 19
    if i < b.count, b[i] == UInt8(ascii: ".") {
      i += 1
      let start = i
      while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 { i += 1 }
      guard i > start else { return nil }
    }
    var offset = 0
    if i == b.count {
      guard allowPartial else { return nil }
    } else if b[i] == UInt8(ascii: "Z") {
      i += 1
    } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
      guard let oh = num(i + 1, 2), i + 3 < b.count, b[i + 3] == UInt8(ascii: ":"), let om = num(i + 4, 2) else {
        return nil
      }
      offset = (oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "+") ? 1 : -1)
      i += 6
    } else {
      return nil
    }
    guard i == b.count else { return nil }
    return dayStart + hh * 3600 + mm * 60 + ss - offset
  }

  /// Days since 1970-01-01 for a civil date (`CohortBasics.CivilDate`, Howard Hinnant's algorithm).
  static func days(year: Int, month: Int, day: Int) -> Int {
    Int(CivilDate.days(year: Int64(year), month: Int64(month), day: Int64(day)))
  }

  static func civil(fromDays days: Int) -> (Int, Int, Int) {
    let (y, m, d) = CivilDate.date(days: Int64(days))
    return (Int(y), Int(m), Int(d))
  }
}

/// SplitMix64: a small deterministic generator.
struct SplitMix: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  init(_ parts: UInt64...) {
    var s: UInt64 = 0x9E37_79B9_7F4A_7C15
    for p in parts { s = SplitMix.mix(s ^ p &+ 0x632B_E59B_D9B4_E019) }
    state = s
  }
  static func mix(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  mutating func next() -> UInt64 {
    state = state &+ 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  /// Uniform integer in 0..<n (n > 0).
  mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
  /// True with probability p.
  mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }
  mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
  mutating func range(_ lo: Int, _ hi: Int) -> Int { lo + below(hi - lo + 1) }
}
