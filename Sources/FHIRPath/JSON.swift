import CohortBasics
import Foundation

/// A JSON value as FHIRPath sees it. Numbers keep whether they were written as integers and, for
/// decimals, how many digits followed the point (FHIR decimal precision: `1.0` ≠ `1` for
/// `lowBoundary()`), which `JSONSerialization` would lose.
public enum JSON: Sendable, Equatable {
  case null
  case bool(Bool)
  case integer(Int)
  /// A decimal number and its scale (digits after the decimal point as written).
  case decimal(Double, scale: Int)
  case string(String)
  case array([JSON])
  case object(JSONObject)

  /// The member `key` of an object (nil for other values or a missing key).
  public subscript(key: String) -> JSON? {
    if case .object(let o) = self { return o[key] }
    return nil
  }

  public var stringValue: String? {
    if case .string(let s) = self { return s }
    return nil
  }

  public var arrayValue: [JSON]? {
    if case .array(let a) = self { return a }
    return nil
  }

  public var doubleValue: Double? {
    switch self {
    case .integer(let i): return Double(i)
    case .decimal(let d, _): return d
    default: return nil
    }
  }

  public static func == (a: JSON, b: JSON) -> Bool {
    switch (a, b) {
    case (.null, .null): return true
    case (.bool(let x), .bool(let y)): return x == y
    case (.integer(let x), .integer(let y)): return x == y
    case (.string(let x), .string(let y)): return x == y
    case (.array(let x), .array(let y)): return x == y
    case (.object(let x), .object(let y)): return x == y
    default:
      if let x = a.doubleValue, let y = b.doubleValue { return x == y }
      return false
    }
  }
}

/// A JSON object: members in document order (lookups are linear, which beats hashing for the
/// small objects FHIR resources are made of).
public struct JSONObject: Sendable, Equatable {
  public var keys: [String]
  public var values: [JSON]

  public init(keys: [String] = [], values: [JSON] = []) {
    self.keys = keys
    self.values = values
  }

  public init(_ members: [(String, JSON)]) {
    keys = members.map(\.0)
    values = members.map(\.1)
  }

  public subscript(key: String) -> JSON? {
    for i in keys.indices where keys[i] == key { return values[i] }
    return nil
  }

  public var count: Int { keys.count }

  /// Equality ignores member order.
  public static func == (a: JSONObject, b: JSONObject) -> Bool {
    guard a.keys.count == b.keys.count else { return false }
    for i in a.keys.indices {
      guard let v = b[a.keys[i]], v == a.values[i] else { return false }
    }
    return true
  }
}

/// A JSON text that could not be parsed.
public struct JSONError: Error, CustomStringConvertible, Sendable, Equatable {
  public var message: String
  public var offset: Int
  public var description: String { "invalid JSON at byte \(offset): \(message)" }
}

extension JSON {
  /// Parses one JSON value (surrounding whitespace allowed).
  public static func parse(_ text: String) throws(JSONError) -> JSON {
    var t = text
    return try t.withUTF8 { buffer in Result { () throws(JSONError) -> JSON in try parse(buffer) } }.get()
  }

  public static func parse(_ data: Data) throws(JSONError) -> JSON {
    try data.withUnsafeBytes { raw in
      Result { () throws(JSONError) -> JSON in try parse(raw.bindMemory(to: UInt8.self)) }
    }.get()
  }

  public static func parse(_ bytes: [UInt8]) throws(JSONError) -> JSON {
    try bytes.withUnsafeBufferPointer { b in Result { () throws(JSONError) -> JSON in try parse(b) } }.get()
  }

  /// Parses one JSON value. When `keepTopLevel` is given and the value is an object, members of
  /// that object whose key it rejects are skipped without being built (a view needs a few fields
  /// of each resource).
  public static func parse(
    _ buffer: UnsafeBufferPointer<UInt8>, keepTopLevel: ((UnsafeBufferPointer<UInt8>) -> Bool)? = nil
  ) throws(JSONError) -> JSON {
    var p = JSONParser(buffer)
    p.skipWhitespace()
    let v: JSON
    if let keep = keepTopLevel, p.peek == UInt8(ascii: "{") {
      v = try p.parseObject(keep: keep)
    } else {
      v = try p.parseValue(depth: 0)
    }
    p.skipWhitespace()
    guard p.i == p.end else { throw p.error("unexpected content after the value") }
    return v
  }
}

struct JSONParser {
  let b: UnsafeBufferPointer<UInt8>
  var i = 0
  let end: Int

  init(_ b: UnsafeBufferPointer<UInt8>) {
    self.b = b
    end = b.count
  }

  var peek: UInt8 { i < end ? b[i] : 0 }

  func error(_ message: String) -> JSONError { JSONError(message: message, offset: i) }

  mutating func skipWhitespace() {
    while i < end {
      let c = b[i]
      if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i += 1 } else { break }
    }
  }

  mutating func expect(_ c: UInt8) throws(JSONError) {
    skipWhitespace()
    guard i < end, b[i] == c else {
      throw error("expected '\(Character(Unicode.Scalar(c)))'")
    }
    i += 1
  }

  mutating func parseValue(depth: Int) throws(JSONError) -> JSON {
    guard depth < 512 else { throw error("nesting deeper than 512") }
    skipWhitespace()
    guard i < end else { throw error("unexpected end of input") }
    switch b[i] {
    case UInt8(ascii: "{"): return try parseObject(depth: depth)
    case UInt8(ascii: "["):
      i += 1
      var items: [JSON] = []
      skipWhitespace()
      if peek == UInt8(ascii: "]") {
        i += 1
        return .array(items)
      }
      while true {
        items.append(try parseValue(depth: depth + 1))
        skipWhitespace()
        guard i < end else { throw error("unterminated array") }
        if b[i] == UInt8(ascii: ",") {
          i += 1
        } else if b[i] == UInt8(ascii: "]") {
          i += 1
          return .array(items)
        } else {
          throw error("expected ',' or ']'")
        }
      }
    case UInt8(ascii: "\""): return .string(try parseString())
    case UInt8(ascii: "t"): try literal("true"); return .bool(true)
    case UInt8(ascii: "f"): try literal("false"); return .bool(false)
    case UInt8(ascii: "n"): try literal("null"); return .null
    default: return try parseNumber()
    }
  }

  mutating func literal(_ word: StaticString) throws(JSONError) {
    let n = word.utf8CodeUnitCount
    guard i + n <= end else { throw error("invalid literal") }
    let w = word.utf8Start
    for k in 0..<n where b[i + k] != w[k] { throw error("invalid literal") }
    i += n
  }

  mutating func parseObject(depth: Int) throws(JSONError) -> JSON {
    i += 1
    var keys: [String] = []
    var values: [JSON] = []
    skipWhitespace()
    if peek == UInt8(ascii: "}") {
      i += 1
      return .object(JSONObject(keys: keys, values: values))
    }
    while true {
      skipWhitespace()
      guard peek == UInt8(ascii: "\"") else { throw error("expected a member name") }
      keys.append(try parseString())
      try expect(UInt8(ascii: ":"))
      values.append(try parseValue(depth: depth + 1))
      skipWhitespace()
      guard i < end else { throw error("unterminated object") }
      if b[i] == UInt8(ascii: ",") {
        i += 1
      } else if b[i] == UInt8(ascii: "}") {
        i += 1
        return .object(JSONObject(keys: keys, values: values))
      } else {
        throw error("expected ',' or '}'")
      }
    }
  }

  /// A top-level object keeping only the members `keep` accepts.
  mutating func parseObject(keep: (UnsafeBufferPointer<UInt8>) -> Bool) throws(JSONError) -> JSON {
    i += 1
    var keys: [String] = []
    var values: [JSON] = []
    skipWhitespace()
    if peek == UInt8(ascii: "}") {
      i += 1
      return .object(JSONObject(keys: keys, values: values))
    }
    while true {
      skipWhitespace()
      guard peek == UInt8(ascii: "\"") else { throw error("expected a member name") }
      let start = i + 1
      try skipString()
      let keyBytes = UnsafeBufferPointer(rebasing: b[start..<(i - 1)])
      try expect(UInt8(ascii: ":"))
      if keep(keyBytes) {
        i = start - 1
        keys.append(try parseString())
        try expect(UInt8(ascii: ":"))
        values.append(try parseValue(depth: 1))
      } else {
        try skipValue(depth: 1)
      }
      skipWhitespace()
      guard i < end else { throw error("unterminated object") }
      if b[i] == UInt8(ascii: ",") {
        i += 1
      } else if b[i] == UInt8(ascii: "}") {
        i += 1
        return .object(JSONObject(keys: keys, values: values))
      } else {
        throw error("expected ',' or '}'")
      }
    }
  }

  /// Skips a string (the cursor on its opening quote), leaving the cursor after the closing quote.
  mutating func skipString() throws(JSONError) {
    i += 1
    while i < end {
      let c = b[i]
      if c == UInt8(ascii: "\"") {
        i += 1
        return
      }
      i += c == UInt8(ascii: "\\") ? 2 : 1
    }
    throw error("unterminated string")
  }

  /// Skips any value, checking only its bracket structure.
  mutating func skipValue(depth: Int) throws(JSONError) {
    skipWhitespace()
    guard i < end else { throw error("unexpected end of input") }
    let c = b[i]
    if c == UInt8(ascii: "\"") { return try skipString() }
    if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") {
      var level = 0
      while i < end {
        let d = b[i]
        if d == UInt8(ascii: "\"") {
          try skipString()
          continue
        }
        if d == UInt8(ascii: "{") || d == UInt8(ascii: "[") {
          level += 1
        } else if d == UInt8(ascii: "}") || d == UInt8(ascii: "]") {
          level -= 1
          if level == 0 {
            i += 1
            return
          }
        }
        i += 1
      }
      throw error("unterminated value")
    }
    // Scalar: up to the next delimiter.
    let start = i
    while i < end {
      let d = b[i]
      if d == UInt8(ascii: ",") || d == UInt8(ascii: "}") || d == UInt8(ascii: "]") || d == 0x20
        || d == 0x0A || d == 0x0D || d == 0x09
      {
        break
      }
      i += 1
    }
    if i == start { throw error("expected a value") }
  }

  mutating func parseString() throws(JSONError) -> String {
    i += 1
    let start = i
    while i < end {
      let c = b[i]
      if c == UInt8(ascii: "\"") {
        let s = String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
        i += 1
        return s
      }
      if c == UInt8(ascii: "\\") { break }
      i += 1
    }
    // Escapes: the package's one decoder (CohortBasics), lenient like this reader (resources were verified when
    // they were downloaded): raw control characters pass, a lone surrogate becomes U+FFFD.
    do {
      let (utf8, next) = try JSONString.unescape(UnsafeRawBufferPointer(b), from: start, end: end, .lenient)
      i = next
      return String(decoding: utf8, as: UTF8.self)
    } catch .unterminated {
      throw self.error("unterminated string")
    } catch .invalidUnicodeEscape, .truncatedUnicodeEscape {
      throw self.error("invalid \\u escape")
    } catch {
      throw self.error("invalid escape")
    }
  }

  mutating func parseNumber() throws(JSONError) -> JSON {
    let start = i
    var negative = false
    if peek == UInt8(ascii: "-") {
      negative = true
      i += 1
    }
    var intValue = 0
    var digits = 0
    var overflow = false
    while i < end, b[i] >= 0x30, b[i] <= 0x39 {
      let (m, o1) = intValue.multipliedReportingOverflow(by: 10)
      let (s, o2) = m.addingReportingOverflow(Int(b[i] - 0x30))
      overflow = overflow || o1 || o2
      intValue = s
      digits += 1
      i += 1
    }
    guard digits > 0 else { throw error("expected a value") }
    var scale = 0
    var isDecimal = false
    if peek == UInt8(ascii: ".") {
      isDecimal = true
      i += 1
      while i < end, b[i] >= 0x30, b[i] <= 0x39 {
        scale += 1
        i += 1
      }
      guard scale > 0 else { throw error("expected digits after '.'") }
    }
    if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
      isDecimal = true
      i += 1
      if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
      var expDigits = 0
      while i < end, b[i] >= 0x30, b[i] <= 0x39 {
        expDigits += 1
        i += 1
      }
      guard expDigits > 0 else { throw error("expected exponent digits") }
    }
    if !isDecimal && !overflow { return .integer(negative ? -intValue : intValue) }
    let text = String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
    guard let d = Double(text) else { throw error("invalid number") }
    return .decimal(d, scale: scale)
  }
}

// MARK: - Writing

extension JSON {
  /// Compact JSON text (object members in their order).
  public var jsonText: String {
    var out = ""
    write(to: &out)
    return out
  }

  public func write(to out: inout String) {
    switch self {
    case .null: out += "null"
    case .bool(let b): out += b ? "true" : "false"
    case .integer(let i): out += String(i)
    case .decimal(let d, let scale): out += JSON.decimalText(d, scale: scale)
    case .string(let s): JSON.writeString(s, to: &out)
    case .array(let a):
      out += "["
      for (k, v) in a.enumerated() {
        if k > 0 { out += "," }
        v.write(to: &out)
      }
      out += "]"
    case .object(let o):
      out += "{"
      for k in o.keys.indices {
        if k > 0 { out += "," }
        JSON.writeString(o.keys[k], to: &out)
        out += ":"
        o.values[k].write(to: &out)
      }
      out += "}"
    }
  }

  /// A decimal as text, keeping trailing zeros up to its scale (`1.0` stays `1.0`).
  public static func decimalText(_ d: Double, scale: Int) -> String {
    guard d.isFinite else { return "null" }
    if d == d.rounded(), abs(d) < 1e15 {
      let i = String(Int(d))
      return scale > 0 ? i + "." + String(repeating: "0", count: min(scale, 17)) : i
    }
    if scale > 0, scale <= 15 {
      let formatted = String(format: "%.\(scale)f", d)
      if Double(formatted) == d { return formatted }
    }
    return "\(d)"
  }

  public static func writeString(_ s: String, to out: inout String) { JSONString.write(s, to: &out) }
}
