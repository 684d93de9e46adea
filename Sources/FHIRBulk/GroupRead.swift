import CohortBasics
import Foundation
import NDJSON

/// A Group's membership as read from the server: known (possibly empty), or unknown because the
/// Group came without its `member` list (large Groups, `_summary`) — then no leavers may be
/// computed (issue 11 item 2).
public enum GroupMembership: Sendable, Equatable {
  case known([String])
  case unknown(reason: String)

  /// The member ids when known, nil when unknown.
  public var ids: [String]? {
    if case .known(let ids) = self { return ids }
    return nil
  }
}

extension BulkClient {
  /// Reads `[base]/Group/{id}` and returns its members' Patient ids (C59–C61: the member list that
  /// joiners and leavers are computed from). Inactive members are left out. A Group without
  /// `member`, or with an empty `member` but a positive `quantity`, is `.unknown`.
  ///
  /// Memory: the body is read in one pass into the member references only (`GroupDocument`), never into a tree of
  /// Foundation objects — a `JSONSerialization` tree costs kilobytes per member (≈ 6 KB measured, 65 MB for 10,000
  /// members; `JSONDecoder` still ≈ 0.6 KB), so a 100,000-patient Group alone made the export's peak RSS grow with
  /// the cohort.
  public func groupMembers(groupID: String) async throws -> GroupMembership {
    let url = endpoint.baseURL + "/Group/" + URLText.encode(groupID)
    let r = try await exchange(.groupRead, method: .GET, url: url, accept: "application/fhir+json")
    guard r.status == 200 else { throw serverError(.groupRead, r) }
    guard let group = GroupDocument(r.body), group.resourceType == "Group" else {
      throw BulkError.protocolViolation(operation: .groupRead, detail: "GET Group/\(groupID) did not return a Group")
    }
    guard let members = group.member else {
      if group.hasMember {
        throw BulkError.protocolViolation(operation: .groupRead, detail: "Group/\(groupID) has a `member` that is not an array")
      }
      return .unknown(reason: "Group/\(groupID) was returned without its member list (large Groups and _summary leave it out)")
    }
    if members.isEmpty, let quantity = group.quantity, quantity > 0 {
      return .unknown(reason: "Group/\(groupID) says it has \(quantity) members but lists none")
    }
    var ids: [String] = []
    ids.reserveCapacity(members.count)
    for member in members where !member.inactive {
      guard let reference = member.reference else { continue }
      if let id = FHIRReference.patientID(fromReference: reference) { ids.append(id) }
    }
    return .known(ids)
  }
}

/// The parts of a Group that membership needs, read in one pass over the body's bytes: every other element is
/// validated and skipped without being materialized, so the only memory that grows with the Group is its member
/// references. Lenient like the reader it replaces: a `quantity` or `inactive` of the wrong type counts as absent,
/// a member without `entity.reference` is skipped, and a `member` that is not an array of objects is reported.
/// nil: not a JSON object (or not well-formed JSON).
struct GroupDocument {
  var resourceType: String?
  var quantity: Int?
  /// nil when absent or not an array of objects (`hasMember` tells which).
  var member: [GroupMember]?
  var hasMember = false

  init?(_ body: Data) {
    var parsed: GroupDocument?
    body.withUnsafeBytes { raw in
      var reader = JSONBytes(raw)
      parsed = try? reader.group()
    }
    guard let parsed else { return nil }
    self = parsed
  }

  init() {}
}

struct GroupMember: Equatable {
  var reference: String?
  var inactive = false
}

/// A minimal strict JSON reader over bytes (RFC 8259): values are validated; only what a Group read needs is
/// turned into Swift values.
private struct JSONBytes {
  struct Malformed: Error {}
  let bytes: UnsafeRawBufferPointer
  var i = 0
  var depth = 0

  init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

  mutating func group() throws -> GroupDocument {
    var g = GroupDocument()
    if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { i = 3 }  // a UTF-8 byte order mark
    skipSpace()
    try object { key, r in
      switch key {
      case "resourceType": g.resourceType = try r.stringOrSkip()
      case "quantity": g.quantity = try r.integerOrSkip()
      case "member":
        g.hasMember = true
        g.member = try r.members()
      default: try r.skipValue()
      }
    }
    skipSpace()
    guard i == bytes.count else { throw Malformed() }
    return g
  }

  /// `member`: an array of objects, else nil (the value is still validated).
  mutating func members() throws -> [GroupMember]? {
    guard peek == UInt8(ascii: "[") else {
      try skipValue()
      return nil
    }
    var out: [GroupMember] = []
    var allObjects = true
    try array { r in
      guard r.peek == UInt8(ascii: "{") else {
        allObjects = false
        try r.skipValue()
        return
      }
      var m = GroupMember()
      try r.object { key, r in
        switch key {
        case "inactive": m.inactive = try r.boolOrSkip() == true
        case "entity":
          guard r.peek == UInt8(ascii: "{") else { return try r.skipValue() }
          try r.object { key, r in
            if key == "reference" { m.reference = try r.stringOrSkip() } else { try r.skipValue() }
          }
        default: try r.skipValue()
        }
      }
      if allObjects { out.append(m) }
    }
    return allObjects ? out : nil
  }

  var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

  mutating func skipSpace() {
    while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
  }

  mutating func expect(_ c: UInt8) throws {
    skipSpace()
    guard peek == c else { throw Malformed() }
    i += 1
  }

  /// `{ "key": value, … }`; `field` must consume the value.
  mutating func object(_ field: (String, inout JSONBytes) throws -> Void) throws {
    depth += 1
    defer { depth -= 1 }
    guard depth <= 512 else { throw Malformed() }
    try expect(UInt8(ascii: "{"))
    skipSpace()
    if peek == UInt8(ascii: "}") {
      i += 1
      return
    }
    while true {
      skipSpace()
      let key = try string()
      try expect(UInt8(ascii: ":"))
      skipSpace()
      try field(key, &self)
      skipSpace()
      guard let c = peek else { throw Malformed() }
      i += 1
      if c == UInt8(ascii: "}") { return }
      guard c == UInt8(ascii: ",") else { throw Malformed() }
    }
  }

  /// `[ value, … ]`; `element` must consume the value.
  mutating func array(_ element: (inout JSONBytes) throws -> Void) throws {
    depth += 1
    defer { depth -= 1 }
    guard depth <= 512 else { throw Malformed() }
    try expect(UInt8(ascii: "["))
    skipSpace()
    if peek == UInt8(ascii: "]") {
      i += 1
      return
    }
    while true {
      skipSpace()
      try element(&self)
      skipSpace()
      guard let c = peek else { throw Malformed() }
      i += 1
      if c == UInt8(ascii: "]") { return }
      guard c == UInt8(ascii: ",") else { throw Malformed() }
    }
  }

  mutating func skipValue() throws {
    skipSpace()
    guard let c = peek else { throw Malformed() }
    switch c {
    case UInt8(ascii: "{"): try object { _, r in try r.skipValue() }
    case UInt8(ascii: "["): try array { r in try r.skipValue() }
    case UInt8(ascii: "\""): _ = try string()
    case UInt8(ascii: "t"): try literal("true")
    case UInt8(ascii: "f"): try literal("false")
    case UInt8(ascii: "n"): try literal("null")
    default: _ = try number()
    }
  }

  mutating func stringOrSkip() throws -> String? {
    if peek == UInt8(ascii: "\"") { return try string() }
    try skipValue()
    return nil
  }

  mutating func boolOrSkip() throws -> Bool? {
    if peek == UInt8(ascii: "t") {
      try literal("true")
      return true
    }
    if peek == UInt8(ascii: "f") {
      try literal("false")
      return false
    }
    try skipValue()
    return nil
  }

  /// A number that is a whole value in Int's range (`5`, `5.0`, `5e0`), else nil.
  mutating func integerOrSkip() throws -> Int? {
    guard let c = peek, c == UInt8(ascii: "-") || (c >= 0x30 && c <= 0x39) else {
      try skipValue()
      return nil
    }
    let text = try number()
    if let n = Int(text) { return n }
    if let d = Double(text), d.rounded() == d, abs(d) < 9.0e18 { return Int(d) }
    return nil
  }

  mutating func literal(_ word: StaticString) throws {
    let n = word.utf8CodeUnitCount
    guard i + n <= bytes.count else { throw Malformed() }
    for k in 0..<n where bytes[i + k] != word.utf8Start[k] { throw Malformed() }
    i += n
  }

  /// JSON number grammar; returns its text.
  mutating func number() throws -> String {
    let start = i
    func digits() -> Int {
      let s = i
      while i < bytes.count, bytes[i] >= 0x30 && bytes[i] <= 0x39 { i += 1 }
      return i - s
    }
    if peek == UInt8(ascii: "-") { i += 1 }
    guard let first = peek, first >= 0x30 && first <= 0x39 else { throw Malformed() }
    if first == 0x30 { i += 1 } else { _ = digits() }
    if peek == UInt8(ascii: ".") {
      i += 1
      guard digits() > 0 else { throw Malformed() }
    }
    if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
      i += 1
      if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
      guard digits() > 0 else { throw Malformed() }
    }
    return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
  }

  /// A JSON string (escapes decoded; invalid UTF-8, control characters and bad escapes are malformed).
  mutating func string() throws -> String {
    guard peek == UInt8(ascii: "\"") else { throw Malformed() }
    i += 1
    let start = i
    // Fast path: no escapes.
    while i < bytes.count, bytes[i] != UInt8(ascii: "\""), bytes[i] != UInt8(ascii: "\\") {
      guard bytes[i] >= 0x20 else { throw Malformed() }
      i += 1
    }
    guard i < bytes.count else { throw Malformed() }
    if bytes[i] == UInt8(ascii: "\"") {
      defer { i += 1 }
      return try validated(UnsafeRawBufferPointer(rebasing: bytes[start..<i]))
    }
    // Escapes: the package's one decoder, strict (control characters, bad escapes and lone surrogates are malformed).
    let decoded: (utf8: [UInt8], next: Int)
    do {
      decoded = try JSONString.unescape(bytes, from: start, .strict)
    } catch {
      throw Malformed()
    }
    i = decoded.next
    return try decoded.utf8.withUnsafeBytes { try validated($0) }
  }

  func validated(_ utf8: UnsafeRawBufferPointer) throws -> String {
    guard let s = String(validating: utf8, as: UTF8.self) else { throw Malformed() }
    return s
  }
}
