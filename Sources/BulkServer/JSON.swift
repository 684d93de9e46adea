// A small order-preserving JSON value with a serializer and a parser.
// Key order is kept as written, so generated resources serialize byte-identically
// on every run, and numbers keep their original text.

import CohortBasics

/// A JSON value. Objects keep their key order; numbers keep their text.
public enum JSON: Sendable {
  case null
  case bool(Bool)
  case number(String)
  case string(String)
  case array([JSON])
  case object([(String, JSON)])

  static func int(_ value: Int) -> JSON { .number(String(value)) }
  static func double(_ value: Double) -> JSON {
    if value.rounded() == value && abs(value) < 1e15 { return .number(String(Int(value))) }
    return .number(String(value))
  }

  subscript(key: String) -> JSON? {
    if case .object(let members) = self {
      for (k, v) in members where k == key { return v }
    }
    return nil
  }

  var stringValue: String? {
    if case .string(let s) = self { return s }
    return nil
  }
  var arrayValue: [JSON]? {
    if case .array(let a) = self { return a }
    return nil
  }
  var objectValue: [(String, JSON)]? {
    if case .object(let o) = self { return o }
    return nil
  }
  var boolValue: Bool? {
    if case .bool(let b) = self { return b }
    return nil
  }
  var intValue: Int? {
    if case .number(let n) = self { return Int(n) ?? Double(n).map { Int($0) } }
    return nil
  }

  /// Returns a copy with `key` set (replaced in place, or appended).
  func setting(_ key: String, _ value: JSON) -> JSON {
    guard case .object(var members) = self else { return self }
    if let index = members.firstIndex(where: { $0.0 == key }) {
      members[index].1 = value
    } else {
      members.append((key, value))
    }
    return .object(members)
  }

  /// Returns a copy with `key` set, inserted after `afterKey` when it is new.
  func setting(_ key: String, _ value: JSON, after afterKey: String) -> JSON {
    guard case .object(var members) = self else { return self }
    if let index = members.firstIndex(where: { $0.0 == key }) {
      members[index].1 = value
    } else if let a = members.firstIndex(where: { $0.0 == afterKey }) {
      members.insert((key, value), at: a + 1)
    } else {
      members.append((key, value))
    }
    return .object(members)
  }

  func removing(_ key: String) -> JSON {
    guard case .object(let members) = self else { return self }
    return .object(members.filter { $0.0 != key })
  }

  // MARK: serialization

  func serialized() -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(512)
    write(to: &out)
    return out
  }

  func serializedString() -> String { String(decoding: serialized(), as: UTF8.self) }

  func write(to out: inout [UInt8]) {
    switch self {
    case .null: out.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])
    case .bool(let b): out.append(contentsOf: b ? Array("true".utf8) : Array("false".utf8))
    case .number(let n): out.append(contentsOf: n.utf8)
    case .string(let s): JSON.writeString(s, to: &out)
    case .array(let items):
      out.append(UInt8(ascii: "["))
      for (i, item) in items.enumerated() {
        if i > 0 { out.append(UInt8(ascii: ",")) }
        item.write(to: &out)
      }
      out.append(UInt8(ascii: "]"))
    case .object(let members):
      out.append(UInt8(ascii: "{"))
      for (i, (k, v)) in members.enumerated() {
        if i > 0 { out.append(UInt8(ascii: ",")) }
        JSON.writeString(k, to: &out)
        out.append(UInt8(ascii: ":"))
        v.write(to: &out)
      }
      out.append(UInt8(ascii: "}"))
    }
  }

  static func writeString(_ s: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    for byte in s.utf8 {
      switch byte {
      case UInt8(ascii: "\""): out.append(UInt8(ascii: "\\")); out.append(byte)
      case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(byte)
      case 0x0A: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
      case 0x0D: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
      case 0x09: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
      case 0..<0x20:
        let hex = Array("0123456789abcdef".utf8)
        out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), 0x30, 0x30])
        out.append(hex[Int(byte >> 4)])
        out.append(hex[Int(byte & 0xF)])
      default: out.append(byte)
      }
    }
    out.append(UInt8(ascii: "\""))
  }

  // MARK: parsing

  static func parse(_ text: String) throws(JSONParseError) -> JSON {
    try parse(Array(text.utf8))
  }

  static func parse<C: Collection<UInt8>>(_ bytes: C) throws(JSONParseError) -> JSON {
    var parser = JSONParser(bytes: Array(bytes))
    parser.skipSpace()
    let value = try parser.parseValue(depth: 0)
    parser.skipSpace()
    if parser.index != parser.bytes.count {
      throw JSONParseError(offset: parser.index, reason: "unexpected text after the JSON value")
    }
    return value
  }
}

struct JSONParseError: Error, CustomStringConvertible {
  let offset: Int
  let reason: String
  var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

private struct JSONParser {
  let bytes: [UInt8]
  var index = 0

  mutating func skipSpace() {
    while index < bytes.count {
      switch bytes[index] {
      case 0x20, 0x0A, 0x0D, 0x09: index += 1
      default: return
      }
    }
  }

  func fail(_ reason: String) -> JSONParseError { JSONParseError(offset: index, reason: reason) }

  mutating func parseValue(depth: Int) throws(JSONParseError) -> JSON {
    guard depth < 200 else { throw fail("nesting too deep") }
    guard index < bytes.count else { throw fail("unexpected end of input") }
    switch bytes[index] {
    case UInt8(ascii: "{"):
      index += 1
      var members: [(String, JSON)] = []
      skipSpace()
      if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
      while true {
        skipSpace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
        let key = try parseString()
        skipSpace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':'") }
        index += 1
        skipSpace()
        let value = try parseValue(depth: depth + 1)
        members.append((key, value))
        skipSpace()
        guard index < bytes.count else { throw fail("unterminated object") }
        if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
        if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
        throw fail("expected ',' or '}'")
      }
    case UInt8(ascii: "["):
      index += 1
      var items: [JSON] = []
      skipSpace()
      if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
      while true {
        skipSpace()
        items.append(try parseValue(depth: depth + 1))
        skipSpace()
        guard index < bytes.count else { throw fail("unterminated array") }
        if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
        if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
        throw fail("expected ',' or ']'")
      }
    case UInt8(ascii: "\""):
      return .string(try parseString())
    case UInt8(ascii: "t"):
      try literal("true"); return .bool(true)
    case UInt8(ascii: "f"):
      try literal("false"); return .bool(false)
    case UInt8(ascii: "n"):
      try literal("null"); return .null
    default:
      let start = index
      while index < bytes.count {
        let b = bytes[index]
        if (b >= 0x30 && b <= 0x39) || b == UInt8(ascii: "-") || b == UInt8(ascii: "+")
          || b == UInt8(ascii: ".") || b == UInt8(ascii: "e") || b == UInt8(ascii: "E")
        {
          index += 1
        } else {
          break
        }
      }
      guard index > start else { throw fail("unexpected character") }
      let text = String(decoding: bytes[start..<index], as: UTF8.self)
      guard Double(text) != nil else { throw fail("invalid number '\(text)'") }
      return .number(text)
    }
  }

  mutating func literal(_ word: String) throws(JSONParseError) {
    let w = Array(word.utf8)
    guard index + w.count <= bytes.count, Array(bytes[index..<index + w.count]) == w else {
      throw fail("invalid literal")
    }
    index += w.count
  }

  mutating func parseString() throws(JSONParseError) -> String {
    index += 1  // opening quote
    let start = index
    // Fast path: no escapes.
    while index < bytes.count {
      let b = bytes[index]
      if b == UInt8(ascii: "\"") {
        let s = String(decoding: bytes[start..<index], as: UTF8.self)
        index += 1
        return s
      }
      if b == UInt8(ascii: "\\") { break }
      if b < 0x20 { throw fail("control character in string") }
      index += 1
    }
    // Escapes: the package's one decoder (CohortBasics), refusing raw control characters; a lone surrogate becomes
    // U+FFFD.
    let rules = JSONString.Unescaping(rejectsControlCharacters: true, rejectsLoneSurrogates: false)
    let decoded = bytes.withUnsafeBytes { raw in
      Result { () throws(JSONString.UnescapeError) in try JSONString.unescape(raw, from: start, rules) }
    }
    switch decoded {
    case .success(let (utf8, next)):
      index = next
      return String(decoding: utf8, as: UTF8.self)
    case .failure(.controlCharacter): throw fail("control character in string")
    case .failure(.truncatedUnicodeEscape): throw fail("truncated \\u escape")
    case .failure(.invalidUnicodeEscape): throw fail("invalid \\u escape")
    case .failure(.invalidEscape), .failure(.loneSurrogate): throw fail("invalid escape")
    case .failure(.unterminated): throw fail("unterminated string")
    }
  }
}
