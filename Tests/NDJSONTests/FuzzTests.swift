import Foundation
import Testing

@testable import NDJSON

/// A JSON value with ordered keys, so the fuzzer controls key order, escapes and whitespace.
indirect enum J {
  case obj([(String, J)])
  case arr([J])
  case str(String)
  case num(String)
  case bool(Bool)
  case null
}

struct Fuzzer {
  var rng: SplitMix64

  mutating func int(_ n: Int) -> Int { Int.random(in: 0..<n, using: &rng) }
  mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }

  static let pieces: [String] = [
    "a", "Z", "0", " ", "\"", "\\", "/", "{", "}", "[", "]", ":", ",", "\n", "\t", "\r", "\u{01}",
    "\u{1F}", "é", "ß", "日本", "😀", "\u{7F}", "\\u", "id", "resourceType", "meta", "\u{2028}",
    "e\u{301}", "𝄞", "subject", "patient", "reference",
  ]

  mutating func string(max: Int = 12) -> String {
    var s = ""
    for _ in 0..<int(max) { s += Fuzzer.pieces[int(Fuzzer.pieces.count)] }
    return s
  }

  mutating func number() -> String {
    switch int(5) {
    case 0: return String(int(100_000) - 50_000)
    case 1: return "0"
    case 2: return "\(int(1000)).\(int(1000))"
    case 3: return "-\(int(9) + 1)e\(["", "+", "-"][int(3)])\(int(30))"
    default: return "\(int(10)).5E\(int(5))"
    }
  }

  /// Random value; `decoyDepth` limits nesting. Nested objects often carry their own
  /// resourceType / id / meta to make sure only the top-level ones are reported.
  mutating func value(depth: Int) -> J {
    let k = depth <= 0 ? int(4) : int(7)
    switch k {
    case 0: return .str(string())
    case 1: return .num(number())
    case 2: return chance(0.5) ? .bool(chance(0.5)) : .null
    case 3: return .str(string(max: 3))
    case 4, 5: return object(depth: depth - 1, decoys: true)
    default:
      var a: [J] = []
      for _ in 0..<int(5) { a.append(value(depth: depth - 1)) }
      return .arr(a)
    }
  }

  mutating func object(depth: Int, decoys: Bool) -> J {
    var keys = Set<String>()
    var members: [(String, J)] = []
    func add(_ k: String, _ v: J) {
      if keys.insert(k).inserted { members.append((k, v)) }
    }
    if decoys && chance(0.5) { add("id", .str(string())) }
    if decoys && chance(0.3) { add("resourceType", .str(string())) }
    if decoys && chance(0.2) {
      add("meta", .obj([("versionId", .str(string())), ("lastUpdated", .str(string()))]))
    }
    // Nested subject/patient/beneficiary references: never the line's patientReference.
    if decoys && chance(0.25) { add(Fuzzer.referenceKeys[int(3)], referenceHolder(depth: depth)) }
    if decoys && chance(0.1) { add("reference", reference()) }
    for _ in 0..<int(5) { add(string(max: 6), value(depth: depth)) }
    shuffle(&members)
    return .obj(members)
  }

  static let referenceKeys = ["subject", "patient", "beneficiary"]

  /// A Reference.reference value: realistic forms and random strings.
  mutating func reference() -> J {
    switch int(6) {
    case 0: return .str("Patient/\(int(100_000))")
    case 1: return .str("urn:uuid:\(int(1 << 30))-\(int(1 << 30))")
    case 2: return .str("https://x/fhir/Patient/\(int(1000))/_history/\(int(9))")
    case 3: return .str("Group/\(int(50))")
    default: return .str(string())
    }
  }

  /// The value of a subject/patient/beneficiary key: usually a Reference object with a string
  /// `reference`, sometimes one without it, with a non-string one, with a `reference` only nested
  /// deeper, an array of references, or not an object at all.
  mutating func referenceHolder(depth: Int) -> J {
    var m: [(String, J)] = []
    switch int(10) {
    case 0: m.append(("display", .str(string())))  // no reference
    case 1: m.append(("reference", chance(0.5) ? .null : value(depth: 0)))  // not a string
    case 2: m.append(("identifier", .obj([("reference", reference()), ("value", .str(string()))])))
    case 3: return .arr([.obj([("reference", reference())])])
    case 4: return chance(0.5) ? reference() : value(depth: 0)
    default: m.append(("reference", reference()))
    }
    if chance(0.4) { m.append(("display", .str(string()))) }
    if chance(0.3) { m.append(("type", .str("Patient"))) }
    if depth > 0 && chance(0.2) { m.append(("extension", .arr([object(depth: depth - 1, decoys: true)]))) }
    shuffle(&m)
    return .obj(m)
  }

  mutating func shuffle(_ m: inout [(String, J)]) {
    if m.count < 2 { return }
    for i in stride(from: m.count - 1, to: 0, by: -1) { m.swapAt(i, int(i + 1)) }
  }

  /// A random resource-like object.
  mutating func resource(small: Bool = false) -> J {
    var members: [(String, J)] = []
    var keys = Set<String>()
    func add(_ k: String, _ v: J) {
      if keys.insert(k).inserted { members.append((k, v)) }
    }
    if chance(0.9) { add("resourceType", chance(0.95) ? .str(string()) : value(depth: 1)) }
    if chance(0.9) { add("id", chance(0.95) ? .str(string(max: 40)) : value(depth: 1)) }
    if chance(0.8) {
      var meta: [(String, J)] = []
      var mk = Set<String>()
      if chance(0.8) { meta.append(("versionId", chance(0.9) ? .str(string()) : value(depth: 1))); mk.insert("versionId") }
      if chance(0.8) { meta.append(("lastUpdated", .str(string()))); mk.insert("lastUpdated") }
      if chance(0.5) { meta.append(("tag", .arr([object(depth: 1, decoys: true)]))); mk.insert("tag") }
      if chance(0.3) { meta.append(("source", object(depth: 1, decoys: true))); mk.insert("source") }
      shuffle(&meta)
      add("meta", chance(0.95) ? .obj(meta) : .arr([.obj(meta)]))
    }
    if chance(0.4) {
      var contained: [J] = []
      for _ in 0..<(1 + int(3)) { contained.append(object(depth: 2, decoys: true)) }
      add("contained", .arr(contained))
    }
    if !small && chance(0.3) {  // a long array before the top-level id
      var a: [J] = []
      for _ in 0..<(20 + int(200)) { a.append(object(depth: 1, decoys: true)) }
      add("component", .arr(a))
    }
    for key in Fuzzer.referenceKeys where chance(0.45) { add(key, referenceHolder(depth: 2)) }
    if chance(0.1) { add("reference", reference()) }  // top-level but not inside a holder
    for _ in 0..<int(8) { add(string(max: 8), value(depth: 3)) }
    shuffle(&members)
    return .obj(members)
  }

  // MARK: serialisation with random escapes and whitespace

  mutating func ws() -> String {
    switch int(10) {
    case 0: return " "
    case 1: return "\t "
    case 2: return "\r"
    case 3: return "  "
    default: return ""
    }
  }

  mutating func encode(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
      switch u {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += chance(0.5) ? "\\n" : "\\u000a"
      case "\t": out += "\\t"
      case "\r": out += "\\r"
      case "/": out += chance(0.5) ? "\\/" : "/"
      default:
        if u.value < 0x20 || chance(0.15) {
          if u.value > 0xFFFF {
            let v = u.value - 0x10000
            out += String(format: "\\u%04x\\u%04X", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
          } else {
            out += String(format: chance(0.5) ? "\\u%04x" : "\\u%04X", u.value)
          }
        } else {
          out.unicodeScalars.append(u)
        }
      }
    }
    return out + "\""
  }

  mutating func serialize(_ v: J) -> String {
    switch v {
    case .obj(let m):
      if m.isEmpty { return "{" + ws() + "}" }
      var parts: [String] = []
      for (k, x) in m { parts.append(ws() + encode(k) + ws() + ":" + ws() + serialize(x) + ws()) }
      return "{" + parts.joined(separator: ",") + "}"
    case .arr(let a):
      if a.isEmpty { return "[" + ws() + "]" }
      return "[" + a.map { ws() + serialize($0) + ws() }.joined(separator: ",") + "]"
    case .str(let s): return encode(s)
    case .num(let n): return n
    case .bool(let b): return b ? "true" : "false"
    case .null: return "null"
    }
  }
}

/// The fields as a full JSON parser (JSONSerialization) reads them; nil when it rejects the line.
struct Truth: Equatable {
  var isObject: Bool
  var resourceType, id, versionId, lastUpdated: String?
  var patientReference: String? = nil

  static func of(_ bytes: [UInt8]) -> Truth? {
    guard let any = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
    else { return nil }
    guard let d = any as? [String: Any] else { return Truth(isObject: false) }
    let meta = d["meta"] as? [String: Any]
    return Truth(
      isObject: true, resourceType: d["resourceType"] as? String, id: d["id"] as? String,
      versionId: meta?["versionId"] as? String, lastUpdated: meta?["lastUpdated"] as? String,
      patientReference: patientReference(of: d))
  }

  /// `reference` of the first of subject, patient, beneficiary that is an object with a string one.
  static func patientReference(of d: [String: Any]) -> String? {
    for key in ["subject", "patient", "beneficiary"] {
      if let r = (d[key] as? [String: Any])?["reference"] as? String { return r }
    }
    return nil
  }

  init(
    isObject: Bool, resourceType: String? = nil, id: String? = nil, versionId: String? = nil,
    lastUpdated: String? = nil, patientReference: String? = nil
  ) {
    self.isObject = isObject
    self.resourceType = resourceType
    self.id = id
    self.versionId = versionId
    self.lastUpdated = lastUpdated
    self.patientReference = patientReference
  }

  init(_ line: ScannedLine) {
    self.init(
      isObject: true, resourceType: line.resourceType, id: line.id, versionId: line.versionId,
      lastUpdated: line.lastUpdated, patientReference: line.patientReference)
  }
}

/// Does the scanner's error point at a `]`/`}` preceded by a comma (a trailing comma)?
/// Both forms: "unexpected ']' at byte N" and, for an array, "unexpected byte 0x5d at byte N
/// (expected a value)".
func isTrailingCommaError(_ e: NDJSONError, _ bytes: [UInt8]) -> Bool {
  guard case .invalidJSON(_, let reason) = e,
    reason.hasPrefix("unexpected ']'") || reason.hasPrefix("unexpected '}'")
      || reason.hasPrefix("unexpected byte 0x5d ") || reason.hasPrefix("unexpected byte 0x7d "),
    let range = reason.range(of: "at byte "),
    let at = Int(reason[range.upperBound...].prefix(while: { $0.isNumber })), at < bytes.count
  else { return false }
  var k = at - 1
  while k >= 0, [0x20, 0x09, 0x0D, 0x0A].contains(bytes[k]) { k -= 1 }
  return k >= 0 && bytes[k] == UInt8(ascii: ",")
}

/// True when some string body holds a raw control byte, an invalid escape or an unpaired surrogate.
func hasStringBodyFault(_ b: [UInt8]) -> Bool {
  func hex4(_ k: Int) -> Int? {
    guard k + 4 <= b.count, let v = Int(String(decoding: b[k..<(k + 4)], as: UTF8.self), radix: 16),
      b[k..<(k + 4)].allSatisfy({ $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "-") })
    else { return nil }
    return v
  }
  var i = 0
  var inString = false
  while i < b.count {
    let c = b[i]
    if !inString {
      if c == UInt8(ascii: "\"") { inString = true }
      i += 1
      continue
    }
    if c == UInt8(ascii: "\"") {
      inString = false
      i += 1
    } else if c < 0x20 {
      return true
    } else if c == UInt8(ascii: "\\") {
      guard i + 1 < b.count else { return true }
      let x = b[i + 1]
      if Array("\"\\/bfnrt".utf8).contains(x) {
        i += 2
      } else if x == UInt8(ascii: "u") {
        guard let v = hex4(i + 2) else { return true }
        i += 6
        if v >= 0xDC00 && v <= 0xDFFF { return true }
        if v >= 0xD800 && v <= 0xDBFF {
          guard i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u"),
            let lo = hex4(i + 2), lo >= 0xDC00 && lo <= 0xDFFF
          else { return true }
          i += 6
        }
      } else {
        return true
      }
    } else {
      i += 1
    }
  }
  return inString
}

func scanLine(_ bytes: [UInt8]) -> Result<ScannedLine?, NDJSONError> {
  do {
    let lines = try scanAll(bytes)
    return .success(lines.first)
  } catch let e as NDJSONError {
    return .failure(e)
  } catch {
    return .failure(.invalidJSON(line: 0, reason: "\(error)"))
  }
}

@Suite struct FuzzTests {
  /// Random resources: the scanner's fields equal JSONSerialization's, for every line. Keys come
  /// in random order; subject/patient/beneficiary decoys sit in nested objects and `contained`.
  @Test(arguments: [1 as UInt64, 2, 3, 4])
  func scannerMatchesJSONSerialization(seed: UInt64) throws {
    var f = Fuzzer(rng: SplitMix64(seed: seed))
    var checked = 0
    var withReference = 0
    var fromPatientOrBeneficiary = 0
    for i in 0..<1000 {
      let text = f.serialize(f.resource())
      let bytes = Array(text.utf8)
      guard let truth = Truth.of(bytes) else {
        Issue.record("generator produced invalid JSON (seed \(seed) case \(i)): \(text)")
        continue
      }
      switch scanLine(bytes) {
      case .success(let line?):
        let got = Truth(line)
        #expect(got == truth, "seed \(seed) case \(i): \(text)")
        if got == truth { checked += 1 }
        if truth.patientReference != nil { withReference += 1 }
        if let d = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
          truth.patientReference != nil, (d["subject"] as? [String: Any])?["reference"] as? String == nil
        {
          fromPatientOrBeneficiary += 1
        }
      case .success(nil):
        Issue.record("no line for seed \(seed) case \(i)")
      case .failure(let e):
        Issue.record("scanner rejected valid JSON (seed \(seed) case \(i)): \(e)\n\(text)")
      }
    }
    #expect(checked == 1000)
    // The generator does exercise the field and its fallback order.
    #expect(withReference > 300 && withReference < 900)
    #expect(fromPatientOrBeneficiary > 50)
  }

  /// Every truncation of a valid line is an error (never a crash, never a line).
  @Test func truncatedLinesError() {
    var f = Fuzzer(rng: SplitMix64(seed: 99))
    var cases = 0
    for _ in 0..<300 {
      let bytes = Array(f.serialize(f.resource()).utf8)
      var cuts = Set<Int>([1, bytes.count - 1])
      for _ in 0..<20 { cuts.insert(1 + f.int(bytes.count - 1)) }
      for cut in cuts where cut > 0 && cut < bytes.count {
        cases += 1
        switch scanLine(Array(bytes[0..<cut])) {
        case .failure(.invalidJSON(line: 1, _)): break
        case let other: Issue.record("prefix \(cut)/\(bytes.count) gave \(other)")
        }
      }
    }
    #expect(cases > 3000)
  }

  /// Random byte mutations. Whenever the full parser accepts, the scanner agrees (fields too);
  /// when the full parser says "not an object", the scanner rejects; when the full parser rejects,
  /// the scanner rejects too unless the only faults lie inside string bodies (invalid UTF-8,
  /// raw control bytes, bad escapes), which the scanner deliberately does not check for speed.
  @Test func mutatedLines() {
    var f = Fuzzer(rng: SplitMix64(seed: 7))
    let alphabet = Array("{}[]\":,\\ u0aé1-.etrnfl".utf8) + [0x00, 0x1F, 0xFF, 0xC3]
    var agreedValid = 0
    var rejectedInvalid = 0
    var acceptedInvalid = 0
    for i in 0..<2000 {
      var bytes = Array(f.serialize(f.resource(small: true)).utf8)
      for _ in 0..<(1 + f.int(3)) {
        let at = f.int(bytes.count)
        switch f.int(3) {
        case 0: bytes[at] = alphabet[f.int(alphabet.count)]
        case 1: bytes.insert(alphabet[f.int(alphabet.count)], at: at)
        default: if bytes.count > 1 { bytes.remove(at: at) }
        }
      }
      let truth = Truth.of(bytes)
      let result = scanLine(bytes)
      switch (truth, result) {
      case (let t?, .success(let line?)) where t.isObject:
        agreedValid += 1
        #expect(line.resourceType == t.resourceType && line.id == t.id, "case \(i)")
        #expect(line.versionId == t.versionId && line.lastUpdated == t.lastUpdated, "case \(i)")
        #expect(line.patientReference == t.patientReference, "case \(i)")
      case (let t?, .failure(let e)) where t.isObject:
        // JSONSerialization accepts a trailing comma ("[1,]", "{"a":1,}"); the scanner does not.
        if !isTrailingCommaError(e, bytes) {
          Issue.record("case \(i): scanner rejected JSON that JSONSerialization accepts: \(e)\n\(String(decoding: bytes, as: UTF8.self))")
        }
      case (let t?, .success(let line?)) where !t.isObject:
        Issue.record("case \(i): scanner accepted a non-object: \(line)")
      case (nil, .failure):
        rejectedInvalid += 1
      case (nil, .success):
        acceptedInvalid += 1
        #expect(
          String(validating: bytes, as: UTF8.self) == nil || hasStringBodyFault(bytes),
          "case \(i): scanner accepted invalid JSON: \(String(decoding: bytes, as: UTF8.self))")
      default:
        break
      }
    }
    #expect(agreedValid > 50)
    #expect(rejectedInvalid > 700)
    #expect(acceptedInvalid > 0)  // the generator does exercise string-body faults
  }

  /// Random bytes (structural characters over-represented) never crash the scanner.
  @Test func randomBytesNeverCrash() {
    var rng = SplitMix64(seed: 13)
    let alphabet = Array("{}[]\":,\\ \r\n\tu0123456789abcdef-+.eEtruefalsnl".utf8) + [0x00, 0x80, 0xFF]
    var lines = 0
    for _ in 0..<2000 {
      var bytes: [UInt8] = [UInt8(ascii: "{")]
      for _ in 0..<Int.random(in: 0..<80, using: &rng) {
        bytes.append(alphabet[Int.random(in: 0..<alphabet.count, using: &rng)])
      }
      if let got = try? scanAll(bytes, chunk: 1 + Int.random(in: 0..<10, using: &rng)) {
        lines += got.count
      }
    }
    #expect(lines < 2000)
  }

  /// The same stream fed in chunks of 1, 2, 7, 4096 bytes gives identical lines (offsets, hashes).
  @Test func chunkBoundaries() throws {
    var f = Fuzzer(rng: SplitMix64(seed: 5))
    var stream: [UInt8] = []
    var expectedLines: [[UInt8]] = []
    for i in 0..<200 {
      let line = Array(f.serialize(f.resource()).utf8)
      expectedLines.append(line)
      stream += line
      stream += i % 7 == 0 ? Array("\r\n".utf8) : [0x0A]
      if i % 11 == 0 { stream += Array(" \n\n".utf8) }
    }
    stream.removeLast()  // no final newline
    let whole = try scanAll(stream)
    #expect(whole.count == expectedLines.count)
    for (l, expected) in zip(whole, expectedLines) {
      let slice = Array(stream[Int(l.offset)..<(Int(l.offset) + l.length)])
      #expect(slice == expected)
      #expect(l.contentHash == expected.withUnsafeBytes { contentHashHex($0) })
    }
    // patientReference too: as JSONSerialization reads it, and present on a good share of lines.
    #expect(whole.map(\.patientReference) == expectedLines.map { Truth.of($0)?.patientReference })
    #expect(whole.filter { $0.patientReference != nil }.count > 60)
    for chunk in [1, 2, 7, 4096] {
      let got = try scanAll(stream, chunk: chunk)
      #expect(got == whole, "chunk size \(chunk)")
      #expect(got.map(\.patientReference) == whole.map(\.patientReference), "chunk size \(chunk)")
    }
  }
}
