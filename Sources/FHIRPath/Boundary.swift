import Foundation

/// `lowBoundary()` / `highBoundary()`: the least and greatest values an imprecise value may stand
/// for (a decimal by its written precision, a partial date/time by its missing components).
enum Boundary {
  static func of(_ item: Item, high: Bool) -> Item? {
    switch item.json {
    case .integer(let n):
      return Item(.decimal(Double(n) + (high ? 0.5 : -0.5), scale: 1), type: .decimal)
    case .decimal(let d, let s):
      return Item(decimal(d, scale: s, high: high), type: .decimal)
    case .string(let text):
      let kind = item.type?.name ?? infer(text)
      switch kind {
      case "date": return date(text, high: high).map { Item(.string($0), type: .date) }
      case "dateTime", "instant":
        return dateTime(text, high: high).map { Item(.string($0), type: .dateTime) }
      case "time": return time(text, high: high).map { Item(.string($0), type: .time) }
      default: return nil
      }
    case .object(let o):
      // A Quantity: the boundary of its value, same unit.
      guard let v = o["value"], let b = of(Item(v), high: high) else { return nil }
      var copy = o
      if let k = copy.keys.firstIndex(of: "value") { copy.values[k] = b.json }
      return Item(.object(copy), type: item.type)
    default: return nil
    }
  }

  static func infer(_ s: String) -> String {
    if s.contains("T") { return "dateTime" }
    let u = Array(s.utf8)
    if u.count >= 3, u[2] == UInt8(ascii: ":") { return "time" }
    return "date"
  }

  /// v ± half a unit of the last written digit, computed on scaled integers so that 1.0 → 0.95.
  static func decimal(_ d: Double, scale: Int, high: Bool) -> JSON {
    let s = min(scale, 15)
    let f = pow(10.0, Double(s + 1))
    let m = (d * f).rounded()
    return .decimal((m + (high ? 5 : -5)) / f, scale: s + 1)
  }

  static func daysIn(year: Int, month: Int) -> Int {
    switch month {
    case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
  }

  /// YYYY[-MM[-DD]] completed to a full date.
  static func date(_ s: String, high: Bool) -> String? {
    let parts = s.split(separator: "-").map { Int($0) }
    guard !parts.isEmpty, parts.count <= 3, parts.allSatisfy({ $0 != nil }) else { return nil }
    let y = parts[0]!
    let m = parts.count > 1 ? parts[1]! : (high ? 12 : 1)
    let d = parts.count > 2 ? parts[2]! : (high ? daysIn(year: y, month: m) : 1)
    return String(format: "%04d-%02d-%02d", y, m, d)
  }

  /// hh[:mm[:ss[.fff]]] completed to milliseconds.
  static func time(_ s: String, high: Bool) -> String? {
    let main = s.split(separator: ".", maxSplits: 1)
    let hms = main[0].split(separator: ":").map { Int($0) }
    guard !hms.isEmpty, hms.count <= 3, hms.allSatisfy({ $0 != nil }) else { return nil }
    let h = hms[0]!
    let m = hms.count > 1 ? hms[1]! : (high ? 59 : 0)
    let sec = hms.count > 2 ? hms[2]! : (high ? 59 : 0)
    var frac = main.count > 1 ? String(main[1]) : ""
    guard frac.allSatisfy(\.isNumber) else { return nil }
    if frac.count < 3 {
      frac += String(repeating: high ? "9" : "0", count: 3 - frac.count)
    }
    return String(format: "%02d:%02d:%02d.", h, m, sec) + frac
  }

  /// A date or dateTime completed to milliseconds, with the widest time zone when none is given
  /// (+14:00 for the low boundary, -12:00 for the high one).
  static func dateTime(_ s: String, high: Bool) -> String? {
    let datePart: Substring
    var timePart: Substring = ""
    if let t = s.firstIndex(of: "T") {
      datePart = s[..<t]
      timePart = s[s.index(after: t)...]
    } else {
      datePart = Substring(s)
    }
    guard let d = date(String(datePart), high: high) else { return nil }
    var zone = high ? "-12:00" : "+14:00"
    var clock = timePart
    if let z = clock.firstIndex(where: { $0 == "Z" || $0 == "+" || $0 == "-" }) {
      zone = String(clock[z...])
      clock = clock[..<z]
    }
    let t: String
    if clock.isEmpty {
      t = high ? "23:59:59.999" : "00:00:00.000"
    } else {
      guard let c = time(String(clock), high: high) else { return nil }
      t = c
    }
    return d + "T" + t + zone
  }
}
