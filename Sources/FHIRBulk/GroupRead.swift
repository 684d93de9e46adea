import AsyncHTTPClient
import CohortBasics
import Foundation
import NDJSON

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

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

/// What a streamed Group read handed over: the number of member ids (known, possibly 0), or why the membership is
/// unknown (then the ids handed over so far mean nothing).
public enum GroupMemberCount: Sendable, Equatable {
  case known(Int)
  case unknown(reason: String)
}

extension BulkClient {
  /// Reads `[base]/Group/{id}` and returns its members' Patient ids (C59–C61: the member list that
  /// joiners and leavers are computed from). Inactive members are left out. A Group without
  /// `member`, or with an empty `member` but a positive `quantity`, is `.unknown`. The ids are collected in memory:
  /// `groupMembers(groupID:spoolFile:batch:)` hands them over in batches instead.
  public func groupMembers(groupID: String) async throws -> GroupMembership {
    let ids = Locked<[String]>([])
    let spool = (NSTemporaryDirectory() as NSString).appendingPathComponent("cohort-Group-\(UUID().uuidString).json")
    let read = try await groupMembers(groupID: groupID, spoolFile: spool) { batch in
      ids.withLock { $0.append(contentsOf: batch) }
    }
    switch read {
    case .known: return .known(ids.current)
    case .unknown(let reason): return .unknown(reason: reason)
    }
  }

  /// Reads `[base]/Group/{id}` and hands its members' Patient ids to `batch`, `batchSize` at a time, in the
  /// Group's order (inactive members and members without a Patient reference left out).
  ///
  /// Memory is independent of the Group's size: the body is streamed to `spoolFile` (replaced if it exists; decoded
  /// from gzip/deflate, within the download limits — no 64 MiB cap as for other small responses), then read in one
  /// pass of a strict JSON reader over the mapped file whose pages are released behind it (`GroupDocument`); only
  /// the batch in hand is materialized. `batch` runs off the cooperative pool (a dispatch thread), so it may write
  /// to a database synchronously. The spool file is removed before returning.
  public func groupMembers(
    groupID: String, spoolFile spool: String, batchSize: Int = 4096,
    batch: @escaping @Sendable ([String]) throws -> Void
  ) async throws -> GroupMemberCount {
    let url = endpoint.baseURL + "/Group/" + URLText.encode(groupID)
    defer { unlink(spool) }
    try await fetch(.groupRead, url: url, accept: "application/fhir+json", toFile: spool)
    let stop = Locked(false)
    let read: (document: GroupDocument, ids: Int)
    do {
      read = try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<(document: GroupDocument, ids: Int), any Error>) in
          DispatchQueue.global(qos: .userInitiated).async {
            done.resume(with: Result { try GroupScan.members(path: spool, batchSize: batchSize, stop: stop, batch: batch) })
          }
        }
      } onCancel: {
        stop.withLock { $0 = true }
      }
    } catch is GroupScan.NotAGroup {
      throw BulkError.protocolViolation(operation: .groupRead, detail: "GET Group/\(groupID) did not return a Group")
    }
    let scan = read.document
    guard scan.resourceType == "Group" else {
      throw BulkError.protocolViolation(operation: .groupRead, detail: "GET Group/\(groupID) did not return a Group")
    }
    guard scan.hasMember else {
      return .unknown(reason: "Group/\(groupID) was returned without its member list (large Groups and _summary leave it out)")
    }
    guard scan.memberIsArrayOfObjects else {
      throw BulkError.protocolViolation(operation: .groupRead, detail: "Group/\(groupID) has a `member` that is not an array")
    }
    if scan.memberCount == 0, let quantity = scan.quantity, quantity > 0 {
      return .unknown(reason: "Group/\(groupID) says it has \(quantity) members but lists none")
    }
    return .known(read.ids)
  }

  /// GETs `url` into the file at `path`, streamed (gzip/deflate decoded, within the download limits), renewing the
  /// access token once on 401 like `exchange`. Any status but 200 is thrown as the server's error.
  func fetch(_ op: BulkOperation, url: String, accept: String, toFile path: String) async throws {
    let policy = downloadPolicy
    let (response, finalURL) = try await send(
      op, method: .GET, url: url, accept: accept, extra: [("Accept-Encoding", "gzip, deflate")])
    let status = Int(response.status.code)
    guard status == 200 else {
      let collected = try? await response.body.collect(upTo: 1 << 20)
      let body = try Self.decodeSmallBody(
        collected.map { Data($0.readableBytesView) } ?? Data(), headers: response.headers, op: op)
      throw serverError(op, Reply(status: status, headers: response.headers, body: body, url: finalURL))
    }
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw BulkError.io(path: path, message: String(cString: strerror(errno))) }
    defer { close(fd) }
    let arrivals = ByteClock(clock)
    let started = clock.now
    let body = response.body
    // The body under the downloads' watchdog: no byte for `stallTimeout`, or longer than `maxDuration` in all.
    try await withThrowingTaskGroup(of: Bool.self) { group in
      group.addTask {
        try await Self.spool(body, url: url, op: op, fd: fd, path: path, policy: policy, arrivals: arrivals)
        return true
      }
      group.addTask {
        throw BulkError.limitExceeded(url: url, limit: try await self.watchdog(started: started, arrivals: arrivals))
      }
      while let done = try await group.next() {
        if done {
          group.cancelAll()
          return
        }
      }
    }
  }

  /// Streams `body` into `fd`, decoded and bounded like a file download (`BodyDecoder`).
  private static func spool(
    _ body: HTTPClientResponse.Body, url: String, op: BulkOperation, fd: Int32, path: String, policy: DownloadPolicy,
    arrivals: ByteClock
  ) async throws {
    var decoder = BodyDecoder(policy: policy)
    do {
      for try await buffer in body {
        arrivals.touch()
        try buffer.withUnsafeReadableBytes { p in try decoder.feed(p) { try writeAll(fd, $0, path: path) } }
      }
      if Task.isCancelled { throw CancellationError() }
      try decoder.finish()
    } catch let hit as LimitHit {
      throw BulkError.limitExceeded(url: url, limit: hit.limit)
    } catch let e as BulkError {
      throw e
    } catch is CancellationError {
      throw CancellationError()
    } catch {
      if Task.isCancelled { throw CancellationError() }
      throw BulkError.network(operation: op, url: url, message: "reading the response: \(describe(error))")
    }
  }
}

/// One pass over a Group's body in a file: the document's parts that membership needs, each member handed to a
/// closure as it is read. The file is mapped read-only and the pages already read are released as the reader moves
/// on (a 100 MB Group costs a few MB of resident memory).
enum GroupScan {
  struct NotAGroup: Error {}

  /// The document, and the member ids handed to `batch` (`batchSize` at a time, the last batch only when `member`
  /// is an array of objects). Throws `NotAGroup` when the file is not a JSON object, `CancellationError` when `stop`
  /// is set between batches.
  static func members(
    path: String, batchSize: Int, stop: Locked<Bool>, batch: ([String]) throws -> Void
  ) throws -> (document: GroupDocument, ids: Int) {
    let size = max(1, batchSize)
    var pending: [String] = []
    pending.reserveCapacity(size)
    var ids = 0
    func flush() throws {
      if stop.current { throw CancellationError() }
      try batch(pending)
      pending.removeAll(keepingCapacity: true)
    }
    let document = try read(path: path) { member in
      guard !member.inactive, let reference = member.reference,
        let id = FHIRReference.patientID(fromReference: reference)
      else { return }
      ids += 1
      pending.append(id)
      if pending.count == size { try flush() }
    }
    guard let document else { throw NotAGroup() }
    if document.memberIsArrayOfObjects, !pending.isEmpty { try flush() }
    return (document, ids)
  }

  /// nil: not a JSON object (or not well-formed JSON). `member` is called for each entry of an array of objects
  /// (before the whole array is known to be one: `memberIsArrayOfObjects` says so at the end).
  static func read(path: String, member: (GroupMember) throws -> Void) throws -> GroupDocument? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw BulkError.io(path: path, message: String(cString: strerror(errno))) }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw BulkError.io(path: path, message: String(cString: strerror(errno))) }
    let size = Int(info.st_size)
    guard size > 0 else { return nil }
    guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
      throw BulkError.io(path: path, message: String(cString: strerror(errno)))
    }
    defer { munmap(base, size) }
    _ = madvise(base, size, MADV_SEQUENTIAL)
    var reader = JSONBytes(UnsafeRawBufferPointer(start: base, count: size))
    reader.releasesPages = true
    do {
      return try reader.group(member: member)
    } catch is JSONBytes.Malformed {
      return nil
    }
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
  /// The entries of `member` — collected by `init(_ body:)` only (a streamed read hands them over one by one); nil
  /// when absent or not an array of objects (`hasMember` tells which).
  var member: [GroupMember]?
  var hasMember = false
  /// `member` is an array of objects (possibly empty).
  var memberIsArrayOfObjects = false
  /// Entries of `member`, inactive ones included.
  var memberCount = 0

  init?(_ body: Data) {
    var parsed: GroupDocument?
    var members: [GroupMember] = []
    body.withUnsafeBytes { raw in
      var reader = JSONBytes(raw)
      parsed = try? reader.group { members.append($0) }
    }
    guard var parsed else { return nil }
    if parsed.memberIsArrayOfObjects { parsed.member = members }
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
  /// The bytes are a private read-only mapping of a file: `releaseBehind` may drop the pages already read.
  var releasesPages = false
  var released = 0

  init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

  mutating func group(member: (GroupMember) throws -> Void) throws -> GroupDocument {
    var g = GroupDocument()
    if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { i = 3 }  // a UTF-8 byte order mark
    skipSpace()
    try object { key, r in
      switch key {
      case "resourceType": g.resourceType = try r.stringOrSkip()
      case "quantity": g.quantity = try r.integerOrSkip()
      case "member":
        g.hasMember = true
        (g.memberIsArrayOfObjects, g.memberCount) = try r.members(member)
      default: try r.skipValue()
      }
    }
    skipSpace()
    guard i == bytes.count else { throw Malformed() }
    return g
  }

  /// `member`: each entry handed to `each` while the array holds only objects; whether it is an array of objects
  /// (the value is still validated when not), and its length.
  mutating func members(_ each: (GroupMember) throws -> Void) throws -> (arrayOfObjects: Bool, count: Int) {
    guard peek == UInt8(ascii: "[") else {
      try skipValue()
      return (false, 0)
    }
    var allObjects = true
    var count = 0
    try array { r in
      count += 1
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
      if allObjects { try each(m) }
      r.releaseBehind()
    }
    return (allObjects, count)
  }

  /// Over a mapped file: gives the pages already read back to the kernel (every 4 MiB), so resident memory stays
  /// flat however long the member list is.
  mutating func releaseBehind() {
    guard releasesPages, i - released >= 4 << 20, let base = bytes.baseAddress else { return }
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let end = i / page * page
    guard end > released else { return }
    _ = madvise(UnsafeMutableRawPointer(mutating: base + released), end - released, MADV_DONTNEED)
    released = end
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
