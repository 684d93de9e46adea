// NDJSON: a streaming byte scanner for FHIR NDJSON.
//
// Per line it extracts the top-level `resourceType` and `id`, the top-level `meta.versionId` and
// `meta.lastUpdated`, the patient reference (`subject`/`patient`/`beneficiary.reference`), a content
// hash, and the byte offset/length of the line, without decoding the resource. It validates the JSON grammar (tokens, nesting, matching brackets, string
// termination, literals, numbers) so that a line that is not exactly one JSON object is rejected.
// Not checked inside string bodies (for speed): raw control bytes, escapes of strings that are not
// extracted, UTF-8 validity. Everything outside string bodies is checked (numbers included).
//
// Streaming use (e.g. while downloading; gzip bodies go through GzipInflater first):
//
//     var scanner = NDJSONLineScanner(maxLineLength: 16 << 20)
//     try buffer.withUnsafeReadableBytes { try scanner.feed($0) { line in … } }   // per chunk
//     try scanner.finish { line in … }                                            // at the end
//
// After an error is thrown the scanner's state is unspecified: stop using it.

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif
import Crypto

/// One non-blank NDJSON line.
public struct ScannedLine: Sendable, Equatable {
  /// 1-based *physical* line number in the stream: blank lines are skipped (C44) but still counted,
  /// so the number matches what an editor or `sed -n Np` shows.
  public var lineNumber: Int
  /// Byte offset of the first byte of the line in the (decompressed) stream.
  public var offset: Int64
  /// Length in bytes, without the `\n` and without a trailing `\r`.
  public var length: Int
  /// Top-level `resourceType` (never one of a nested/contained resource). Nil when absent or not a string.
  public var resourceType: String?
  /// Top-level `id` (never `contained[].id` or the id of a nested object). Nil when absent or not a string.
  public var id: String?
  /// Top-level `meta.versionId`.
  public var versionId: String?
  /// Top-level `meta.lastUpdated`.
  public var lastUpdated: String?
  /// The `reference` string, verbatim (e.g. "Patient/123", "urn:uuid:…", an absolute URL), of the
  /// first of the top-level properties `subject`, `patient`, `beneficiary` (in that priority order,
  /// whatever the key order in the line) whose value is an object with a string `reference`.
  /// Never taken from nested objects or `contained` resources. Nil when there is none or when the
  /// scanner's `fields` do not include `.patientReference`. See `FHIRReference.patientID(fromReference:)`.
  public var patientReference: String?
  /// Lower-case hex of the first 128 bits of SHA-256 over the `length` bytes at `offset`
  /// (32 characters). Empty when the scanner was created with `computeHash: false`.
  public var contentHash: String

  public init(
    lineNumber: Int, offset: Int64, length: Int, resourceType: String?, id: String?,
    versionId: String?, lastUpdated: String?, contentHash: String, patientReference: String? = nil
  ) {
    self.lineNumber = lineNumber
    self.offset = offset
    self.length = length
    self.resourceType = resourceType
    self.id = id
    self.versionId = versionId
    self.lastUpdated = lastUpdated
    self.contentHash = contentHash
    self.patientReference = patientReference
  }
}

public enum NDJSONError: Error, CustomStringConvertible, Equatable {
  case notAnObject(line: Int)
  case invalidJSON(line: Int, reason: String)
  case lineTooLong(line: Int, limit: Int)
  case gzip(String)
  case io(path: String, errno: Int32)

  public var description: String {
    switch self {
    case .notAnObject(let line): return "NDJSON line \(line) is not a JSON object"
    case .invalidJSON(let line, let reason): return "NDJSON line \(line) is not valid JSON: \(reason)"
    case .lineTooLong(let line, let limit): return "NDJSON line \(line) is longer than \(limit) bytes"
    case .gzip(let message): return "gzip: \(message)"
    case .io(let path, let code): return "\(path): \(String(cString: strerror(code)))"
    }
  }
}

/// Which top-level fields the scanner turns into Strings (all are located either way; skipping
/// some saves allocations, e.g. counting needs only `resourceType`).
public struct NDJSONFields: OptionSet, Sendable {
  public let rawValue: UInt8
  public init(rawValue: UInt8) { self.rawValue = rawValue }
  public static let resourceType = NDJSONFields(rawValue: 1 << 1)
  public static let id = NDJSONFields(rawValue: 1 << 2)
  public static let versionId = NDJSONFields(rawValue: 1 << 4)
  public static let lastUpdated = NDJSONFields(rawValue: 1 << 5)
  /// `ScannedLine.patientReference` (top-level `subject`/`patient`/`beneficiary.reference`).
  public static let patientReference = NDJSONFields(rawValue: 1 << 6)
  public static let all: NDJSONFields = [.resourceType, .id, .versionId, .lastUpdated, .patientReference]
}

/// Incremental NDJSON scanner: feed chunks of any size (split anywhere, even inside a UTF-8
/// sequence or a `\r\n`), get every complete non-blank line. Memory is bounded by the longest line.
public struct NDJSONLineScanner: Sendable {
  public let maxLineLength: Int
  /// When false, `contentHash` is "" (saves the SHA-256 pass, e.g. for counting).
  public let computeHash: Bool
  /// Fields extracted into `ScannedLine` (others stay nil).
  public let fields: NDJSONFields
  /// Non-blank lines delivered so far.
  public private(set) var linesSeen: Int = 0
  /// Physical lines finished so far (blank ones included).
  public private(set) var physicalLines: Int = 0
  /// Bytes fed so far.
  public private(set) var bytesSeen: Int64 = 0

  private var pending: [UInt8] = []
  private var pendingStart: Int64 = 0

  public init(maxLineLength: Int = 64 << 20, computeHash: Bool = true, fields: NDJSONFields = .all) {
    self.fields = fields
    self.maxLineLength = max(1, maxLineLength)
    self.computeHash = computeHash
  }

  public mutating func feed(
    _ chunk: UnsafeRawBufferPointer, _ onLine: (ScannedLine) throws -> Void
  ) throws {
    guard let raw = chunk.baseAddress, chunk.count > 0 else { return }
    let base = raw.assumingMemoryBound(to: UInt8.self)
    let n = chunk.count
    let chunkStart = bytesSeen
    bytesSeen += Int64(n)
    var p = 0
    while p < n {
      guard let nlPtr = memchr(base + p, 0x0A, n - p) else {
        // Partial line: keep it for the next chunk.
        if pending.isEmpty { pendingStart = chunkStart + Int64(p) }
        // +1: the line may still end in a `\r` that does not count toward the limit.
        if pending.count + (n - p) > maxLineLength + 1 {
          throw NDJSONError.lineTooLong(line: physicalLines + 1, limit: maxLineLength)
        }
        pending.append(contentsOf: UnsafeBufferPointer(start: base + p, count: n - p))
        return
      }
      let end = UnsafeRawPointer(base).distance(to: UnsafeRawPointer(nlPtr))
      if pending.isEmpty {
        try emit(base + p, end - p, start: chunkStart + Int64(p), onLine)
      } else {
        if pending.count + (end - p) > maxLineLength + 1 {
          throw NDJSONError.lineTooLong(line: physicalLines + 1, limit: maxLineLength)
        }
        pending.append(contentsOf: UnsafeBufferPointer(start: base + p, count: end - p))
        try emitPending(onLine)
      }
      p = end + 1
    }
  }

  /// Delivers the last line when the stream does not end with a newline (C44).
  public mutating func finish(_ onLine: (ScannedLine) throws -> Void) throws {
    guard !pending.isEmpty else { return }
    try emitPending(onLine)
  }

  /// Emits the line held in `pending` and empties it, reusing its storage (unless it grew large).
  private mutating func emitPending(_ onLine: (ScannedLine) throws -> Void) throws {
    var line: [UInt8] = []
    swap(&line, &pending)
    defer {
      if line.capacity <= 1 << 20 {
        line.removeAll(keepingCapacity: true)
        pending = line
      }
    }
    let start = pendingStart
    try line.withUnsafeBufferPointer { b in
      // A non-empty array always has a base address.
      if let lb = b.baseAddress { try emit(lb, b.count, start: start, onLine) }
    }
  }

  @inline(__always)
  private mutating func emit(
    _ p: UnsafePointer<UInt8>, _ count: Int, start: Int64, _ onLine: (ScannedLine) throws -> Void
  ) throws {
    physicalLines += 1
    var s = 0
    var n = count
    if n > 0 && p[n - 1] == 0x0D { n -= 1 }
    // Tolerate a UTF-8 byte order mark at the very start of the stream.
    if start == 0 && n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF { s = 3 }
    if n - s > maxLineLength {
      throw NDJSONError.lineTooLong(line: physicalLines, limit: maxLineLength)
    }
    // Blank (whitespace-only) lines are skipped.
    var k = s
    while k < n, isJSONSpace(p[k]) { k += 1 }
    if k == n { return }
    let fields = try LineParser.parse(p + s, n - s, line: physicalLines, wanted: fields.rawValue)
    linesSeen += 1
    let hash = computeHash ? contentHashHex(UnsafeRawBufferPointer(start: p + s, count: n - s)) : ""
    try onLine(
      ScannedLine(
        lineNumber: physicalLines, offset: start + Int64(s), length: n - s,
        resourceType: fields.resourceType, id: fields.id, versionId: fields.versionId,
        lastUpdated: fields.lastUpdated, contentHash: hash, patientReference: fields.patientReference))
  }
}

/// SHA-256 truncated to 128 bits, lower-case hex (32 characters). Same function as `contentHash`.
public func contentHashHex(_ bytes: UnsafeRawBufferPointer) -> String {
  let digest = SHA256.hash(data: bytes)
  return digest.withUnsafeBytes { d in
    String(unsafeUninitializedCapacity: 32) { out in
      for i in 0..<16 {
        let b = d[i]
        let hi = b >> 4
        let lo = b & 0x0F
        out[2 * i] = hi < 10 ? 0x30 + hi : 0x57 + hi
        out[2 * i + 1] = lo < 10 ? 0x30 + lo : 0x57 + lo
      }
      return 32
    }
  }
}

@inline(__always)
func isJSONSpace(_ c: UInt8) -> Bool {
  c == 0x20 || c == 0x09 || c == 0x0D || c == 0x0A
}

struct LineFields {
  var resourceType: String?
  var id: String?
  var versionId: String?
  var lastUpdated: String?
  var patientReference: String?
}


/// Where the `reference` string bodies of the top-level `subject`, `patient` and `beneficiary`
/// objects start in the line (-1: none), indexed by LineParser's field codes.
struct ReferenceStarts {
  var subject = -1
  var patient = -1
  var beneficiary = -1

  @inline(__always)
  mutating func set(_ code: UInt8, _ start: Int) {
    switch code {
    case LineParser.fSubject: subject = start
    case LineParser.fPatient: patient = start
    case LineParser.fBeneficiary: beneficiary = start
    default: break
    }
  }

  /// The first present one in priority order.
  var first: Int? {
    if subject >= 0 { return subject }
    if patient >= 0 { return patient }
    if beneficiary >= 0 { return beneficiary }
    return nil
  }
}

/// Structural JSON validator + top-level field extractor for one line.
enum LineParser {
  static let maxDepth = 512

  // Fields of interest (the key just read).
  private static let fNone: UInt8 = 0
  private static let fResourceType: UInt8 = 1
  private static let fId: UInt8 = 2
  private static let fMeta: UInt8 = 3
  private static let fVersionId: UInt8 = 4
  private static let fLastUpdated: UInt8 = 5
  // Must stay 6: `NDJSONFields.patientReference` is 1 << 6 and values are kept when `wanted` has
  // bit `1 << field`. All codes >= fReference need the extra bookkeeping in `noteKey`.
  private static let fReference: UInt8 = 6  // "reference" inside one of the three objects below
  static let fSubject: UInt8 = 7  // top-level keys whose object may hold the reference,
  static let fPatient: UInt8 = 8  // in priority order (fSubject first)
  static let fBeneficiary: UInt8 = 9

  static func parse(_ p: UnsafePointer<UInt8>, _ n: Int, line: Int, wanted: UInt8 = 0xFF) throws
    -> LineFields
  {
    var i = 0
    while i < n, isJSONSpace(p[i]) { i += 1 }
    guard i < n, p[i] == 0x7B else { throw NDJSONError.notAnObject(line: line) }
    return try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maxDepth) { stack in
      try run(p, n, start: i, line: line, wanted: wanted, stack: stack)
    }
  }

  @inline(__always)
  private static func bad(_ line: Int, _ reason: String) -> NDJSONError {
    .invalidJSON(line: line, reason: reason)
  }

  /// Index of the closing quote of a string whose body starts at `i`, or nil when unterminated.
  /// `escaped` is set when the body may contain a backslash (exact for short strings,
  /// conservatively true for long ones).
  @inline(__always)
  private static func stringEnd(
    _ p: UnsafePointer<UInt8>, _ n: Int, from i: Int, escaped: inout Bool
  ) -> Int? {
    // SWAR: 8 bytes at a time, flag bytes equal to '"' or '\\'. The lowest flagged byte is
    // always a true match (borrows only propagate upward), which is the only one used.
    let ones: UInt64 = 0x0101_0101_0101_0101
    let highs: UInt64 = 0x8080_8080_8080_8080
    let quotes = ones &* 0x22
    let slashes = ones &* 0x5C
    var j = i
    let swarEnd = min(n, i + 64)
    while j + 8 <= swarEnd {
      let v = UInt64(littleEndian: UnsafeRawPointer(p + j).loadUnaligned(as: UInt64.self))
      let xq = v ^ quotes
      let xb = v ^ slashes
      let m = (((xq &- ones) & ~xq) | ((xb &- ones) & ~xb)) & highs
      if m == 0 {
        j += 8
        continue
      }
      let k = j + (m.trailingZeroBitCount >> 3)
      if p[k] == 0x22 { return k }
      escaped = true
      j = k + 2
    }
    if j + 8 > n {
      while j < n {
        let c = p[j]
        if c == 0x22 { return j }
        if c == 0x5C {
          escaped = true
          j += 2
        } else {
          j += 1
        }
      }
      return nil
    }
    // Long strings (narratives): memchr for '"', then check the backslash run before it.
    escaped = true
    let raw = UnsafeRawPointer(p)
    while j < n {
      guard let q = memchr(p + j, 0x22, n - j) else { return nil }
      let k = raw.distance(to: UnsafeRawPointer(q))
      var b = k - 1
      var run = 0
      while b >= i && p[b] == 0x5C {
        run += 1
        b -= 1
      }
      if run & 1 == 0 { return k }
      j = k + 1
    }
    return nil
  }

  @inline(__always)
  private static func hasBackslash(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> Bool {
    e > s && memchr(p + s, 0x5C, e - s) != nil
  }

  @inline(__always)
  private static func equals(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, _ lit: StaticString)
    -> Bool
  {
    let len = lit.utf8CodeUnitCount
    return e - s == len && memcmp(p + s, lit.utf8Start, len) == 0
  }

  /// The field a key names. `open` is fNone for a top-level key, else the top-level field whose
  /// object (fMeta, fSubject, fPatient, fBeneficiary) holds the key at depth 2. With `refs` false
  /// the subject/patient/beneficiary keys are not recognised (nothing to extract).
  private static func fieldForKey(
    _ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, open: UInt8, refs: Bool, escaped: Bool, line: Int
  ) throws -> UInt8 {
    if escaped && hasBackslash(p, s, e) {
      let key = try unescape(p, s, e, line: line)
      if open == fMeta {
        return key == "versionId" ? fVersionId : key == "lastUpdated" ? fLastUpdated : fNone
      }
      if open != fNone { return key == "reference" ? fReference : fNone }
      switch key {
      case "resourceType": return fResourceType
      case "id": return fId
      case "meta": return fMeta
      case "subject" where refs: return fSubject
      case "patient" where refs: return fPatient
      case "beneficiary" where refs: return fBeneficiary
      default: return fNone
      }
    }
    if open == fMeta {
      if equals(p, s, e, "versionId") { return fVersionId }
      if equals(p, s, e, "lastUpdated") { return fLastUpdated }
      return fNone
    }
    if open != fNone { return equals(p, s, e, "reference") ? fReference : fNone }
    switch e - s {
    case 2: return equals(p, s, e, "id") ? fId : fNone
    case 4: return equals(p, s, e, "meta") ? fMeta : fNone
    case 7:
      guard refs else { return fNone }
      if equals(p, s, e, "subject") { return fSubject }
      return equals(p, s, e, "patient") ? fPatient : fNone
    case 11: return refs && equals(p, s, e, "beneficiary") ? fBeneficiary : fNone
    case 12: return equals(p, s, e, "resourceType") ? fResourceType : fNone
    default: return fNone
    }
  }

  /// The string whose body starts at `s` (its end located again). Kept out of `run`'s hot loop.
  @inline(never)
  private static func string(_ p: UnsafePointer<UInt8>, _ n: Int, from s: Int, line: Int) throws
    -> String?
  {
    var escaped = false
    guard let e = stringEnd(p, n, from: s, escaped: &escaped) else { return nil }
    return try stringValue(p, s, e, escaped: escaped, line: line)
  }

  private static func stringValue(
    _ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, escaped: Bool, line: Int
  ) throws -> String {
    if escaped && hasBackslash(p, s, e) { return try unescape(p, s, e, line: line) }
    return String(decoding: UnsafeBufferPointer(start: p + s, count: e - s), as: UTF8.self)
  }

  @inline(__always)
  private static func isLiteralByte(_ c: UInt8) -> Bool {
    (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || c == 0x2D
      || c == 0x2B || c == 0x2E
  }

  /// At a '"' (checked by the caller): reads a key, the ':' and the space after it; returns the
  /// field the key names.
  @inline(__always)
  private static func readKey(
    _ p: UnsafePointer<UInt8>, _ n: Int, _ i: inout Int, depth: Int, open: UInt8, wantRefs: Bool,
    refs: inout ReferenceStarts, line: Int
  ) throws -> UInt8 {
    var escaped = false
    guard let e = stringEnd(p, n, from: i + 1, escaped: &escaped) else {
      throw bad(line, "unterminated string")
    }
    let field: UInt8
    if depth == 1 {
      field = try fieldForKey(p, i + 1, e, open: fNone, refs: wantRefs, escaped: escaped, line: line)
      // A (repeated) subject/patient/beneficiary key discards the earlier value: last one wins.
      if field >= fSubject { refs.set(field, -1) }
    } else if depth == 2 && open != fNone {
      field = try fieldForKey(p, i + 1, e, open: open, refs: wantRefs, escaped: escaped, line: line)
      if field == fReference { refs.set(open, -1) }
    } else {
      field = fNone
    }
    i = e + 1
    while i < n && isJSONSpace(p[i]) { i += 1 }
    guard i < n else { throw bad(line, "unexpected end of line (unclosed object or array)") }
    guard p[i] == 0x3A else { throw bad(line, "expected ':' at byte \(i)") }
    i += 1
    while i < n && isJSONSpace(p[i]) { i += 1 }
    return field
  }

  /// Grammar-directed walk: the loop body always starts at a value; after a value, the inner
  /// loop handles ',' and closing brackets. Keys are read right after '{' and ','.
  private static func run(
    _ p: UnsafePointer<UInt8>, _ n: Int, start: Int, line: Int, wanted: UInt8,
    stack: UnsafeMutableBufferPointer<UInt8>
  ) throws -> LineFields {
    var out = LineFields()
    var i = start
    var depth = 0  // open containers; stack[d] = 1 for an object, 0 for an array, at depth d+1
    var field = fNone  // field named by the key whose value comes next
    // Top-level field whose object is open at depth 2 (fMeta, fSubject, fPatient, fBeneficiary),
    // else fNone.
    var open = fNone
    var refs = ReferenceStarts()  // `reference` of the subject/patient/beneficiary objects
    let wantRefs = wanted & (1 << fReference) != 0

    value: while true {
      guard i < n else { throw bad(line, depth > 0 ? "unexpected end of line (unclosed object or array)" : "unexpected end of line") }
      let c = p[i]
      if c == 0x22 {  // string value
        var escaped = false
        guard let e = stringEnd(p, n, from: i + 1, escaped: &escaped) else {
          throw bad(line, "unterminated string")
        }
        if field != fNone && wanted & (1 << field) != 0 {
          let s = i + 1
          switch field {
          case fResourceType: out.resourceType = try stringValue(p, s, e, escaped: escaped, line: line)
          case fId: out.id = try stringValue(p, s, e, escaped: escaped, line: line)
          case fVersionId: out.versionId = try stringValue(p, s, e, escaped: escaped, line: line)
          case fLastUpdated: out.lastUpdated = try stringValue(p, s, e, escaped: escaped, line: line)
          case fReference: refs.set(open, s)
          default: break
          }
        }
        field = fNone
        i = e + 1
      } else if c == 0x7B {  // object
        guard depth < maxDepth else { throw bad(line, "nesting deeper than \(maxDepth)") }
        if depth == 1 && (field == fMeta || field >= fSubject) { open = field }
        field = fNone
        stack[depth] = 1
        depth += 1
        i += 1
        while i < n && isJSONSpace(p[i]) { i += 1 }
        guard i < n else { throw bad(line, depth > 0 ? "unexpected end of line (unclosed object or array)" : "unexpected end of line") }
        if p[i] == 0x22 {
          field = try readKey(p, n, &i, depth: depth, open: open, wantRefs: wantRefs, refs: &refs, line: line)
          continue value
        }
        guard p[i] == 0x7D else { throw bad(line, "expected a key or '}' at byte \(i)") }
        // Empty object: closed by the loop below.
      } else if c == 0x5B {  // array
        guard depth < maxDepth else { throw bad(line, "nesting deeper than \(maxDepth)") }
        field = fNone
        stack[depth] = 0
        depth += 1
        i += 1
        while i < n && isJSONSpace(p[i]) { i += 1 }
        guard i < n else { throw bad(line, depth > 0 ? "unexpected end of line (unclosed object or array)" : "unexpected end of line") }
        if p[i] != 0x5D { continue value }
        // Empty array: closed by the loop below.
      } else if isLiteralByte(c) {
        let s = i
        i += 1
        while i < n && isLiteralByte(p[i]) { i += 1 }
        let ok: Bool
        switch c {
        case 0x74: ok = equals(p, s, i, "true")
        case 0x66: ok = equals(p, s, i, "false")
        case 0x6E: ok = equals(p, s, i, "null")
        case 0x2D, 0x30...0x39: ok = isNumber(p, s, i)
        default: ok = false
        }
        guard ok else { throw bad(line, "invalid literal at byte \(s)") }
        field = fNone
      } else {
        throw bad(line, "unexpected byte 0x\(String(c, radix: 16)) at byte \(i) (expected a value)")
      }

      // After a value: ',' or closing brackets.
      while true {
        while i < n && isJSONSpace(p[i]) { i += 1 }
        guard i < n else { throw bad(line, depth > 0 ? "unexpected end of line (unclosed object or array)" : "unexpected end of line") }
        let d = p[i]
        i += 1
        if d == 0x2C {
          while i < n && isJSONSpace(p[i]) { i += 1 }
          if stack[depth - 1] == 1 {
            guard i < n else { throw bad(line, depth > 0 ? "unexpected end of line (unclosed object or array)" : "unexpected end of line") }
            guard p[i] == 0x22 else { throw bad(line, "expected a key at byte \(i)") }
            field = try readKey(p, n, &i, depth: depth, open: open, wantRefs: wantRefs, refs: &refs, line: line)
            }
          continue value
        }
        if d == 0x7D {
          guard stack[depth - 1] == 1 else { throw bad(line, "unexpected '}' at byte \(i - 1)") }
          depth -= 1
          if depth == 1 { open = fNone }
          if depth == 0 {
            while i < n {
              guard isJSONSpace(p[i]) else { throw bad(line, "trailing data after the object") }
              i += 1
            }
            if let r = refs.first { out.patientReference = try string(p, n, from: r, line: line) }
            return out
          }
          continue
        }
        if d == 0x5D {
          guard stack[depth - 1] == 0 else { throw bad(line, "unexpected ']' at byte \(i - 1)") }
          depth -= 1
          continue
        }
        throw bad(line, "unexpected byte 0x\(String(d, radix: 16)) at byte \(i - 1) (expected ',' or a closing bracket)")
      }
    }
  }

  /// JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  private static func isNumber(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> Bool {
    var i = s
    @inline(__always) func digit(_ k: Int) -> Bool { k < e && p[k] >= 0x30 && p[k] <= 0x39 }
    if i < e && p[i] == 0x2D { i += 1 }
    guard digit(i) else { return false }
    if p[i] == 0x30 {
      i += 1
    } else {
      while digit(i) { i += 1 }
    }
    if i < e && p[i] == 0x2E {
      i += 1
      guard digit(i) else { return false }
      while digit(i) { i += 1 }
    }
    if i < e && (p[i] == 0x65 || p[i] == 0x45) {
      i += 1
      if i < e && (p[i] == 0x2B || p[i] == 0x2D) { i += 1 }
      guard digit(i) else { return false }
      while digit(i) { i += 1 }
    }
    return i == e
  }

  @inline(__always)
  private static func hexValue(_ c: UInt8) -> UInt32? {
    switch c {
    case 0x30...0x39: return UInt32(c - 0x30)
    case 0x41...0x46: return UInt32(c - 0x41 + 10)
    case 0x61...0x66: return UInt32(c - 0x61 + 10)
    default: return nil
    }
  }

  @inline(__always)
  private static func appendUTF8(_ v: UInt32, to bytes: inout [UInt8]) {
    switch v {
    case 0..<0x80:
      bytes.append(UInt8(v))
    case 0x80..<0x800:
      bytes.append(UInt8(0xC0 | (v >> 6)))
      bytes.append(UInt8(0x80 | (v & 0x3F)))
    case 0x800..<0x10000:
      bytes.append(UInt8(0xE0 | (v >> 12)))
      bytes.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
      bytes.append(UInt8(0x80 | (v & 0x3F)))
    default:
      bytes.append(UInt8(0xF0 | (v >> 18)))
      bytes.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
      bytes.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
      bytes.append(UInt8(0x80 | (v & 0x3F)))
    }
  }

  /// Decodes the escapes of the string body p[s..<e].
  static func unescape(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, line: Int) throws -> String {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(e - s)
    var i = s
    func hex4(_ k: Int) throws -> UInt32 {
      guard k + 4 <= e, let a = hexValue(p[k]), let b = hexValue(p[k + 1]),
        let c = hexValue(p[k + 2]), let d = hexValue(p[k + 3])
      else { throw bad(line, "invalid \\u escape") }
      return a << 12 | b << 8 | c << 4 | d
    }
    while i < e {
      let c = p[i]
      if c != 0x5C {
        bytes.append(c)
        i += 1
        continue
      }
      guard i + 1 < e else { throw bad(line, "invalid escape") }
      let x = p[i + 1]
      i += 2
      switch x {
      case 0x22: bytes.append(0x22)
      case 0x5C: bytes.append(0x5C)
      case 0x2F: bytes.append(0x2F)
      case 0x62: bytes.append(0x08)
      case 0x66: bytes.append(0x0C)
      case 0x6E: bytes.append(0x0A)
      case 0x72: bytes.append(0x0D)
      case 0x74: bytes.append(0x09)
      case 0x75:
        var v = try hex4(i)
        i += 4
        if v >= 0xD800 && v <= 0xDBFF {
          guard i + 6 <= e, p[i] == 0x5C, p[i + 1] == 0x75 else {
            throw bad(line, "unpaired surrogate in \\u escape")
          }
          let lo = try hex4(i + 2)
          guard lo >= 0xDC00 && lo <= 0xDFFF else {
            throw bad(line, "unpaired surrogate in \\u escape")
          }
          i += 6
          v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)
        } else if v >= 0xDC00 && v <= 0xDFFF {
          throw bad(line, "unpaired surrogate in \\u escape")
        }
        guard let scalar = Unicode.Scalar(v) else { throw bad(line, "invalid \\u escape") }
        appendUTF8(scalar.value, to: &bytes)
      default:
        throw bad(line, "invalid escape '\\\(Character(Unicode.Scalar(x)))'")
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}
