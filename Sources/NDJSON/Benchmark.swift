#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif
import Foundation

/// Throughput measurements for `cohort bench` (not tests).
public enum NDJSONBenchmark {
  public struct Result: Sendable, Equatable {
    public var bytes: Int64  // decompressed bytes scanned
    public var lines: Int
    public var seconds: Double
    public var megabytesPerSecond: Double { seconds > 0 ? Double(bytes) / 1e6 / seconds : 0 }
  }

  /// `NDJSONFile.countByType` (no hashing): the fast path used for counting.
  public static func benchmarkCount(path: String) throws -> Result {
    try measure(path: path, computeHash: false)
  }

  /// Full scan with the SHA-256 content hash, as used when indexing downloads.
  public static func benchmarkScan(path: String) throws -> Result {
    try measure(path: path, computeHash: true)
  }

  private static func measure(path: String, computeHash: Bool) throws -> Result {
    var counts: [String: Int] = [:]
    var lines = 0
    var bytes: Int64 = 0
    let start = monotonicSeconds()
    var scanner = NDJSONLineScanner(
      computeHash: computeHash, fields: computeHash ? .all : .resourceType)
    let onLine: (ScannedLine) -> Void = { line in
      counts[line.resourceType ?? "", default: 0] += 1
      lines += 1
    }
    try NDJSONFile.readChunks(path: path) { chunk in
      bytes += Int64(chunk.count)
      try scanner.feed(chunk, onLine)
    }
    try scanner.finish(onLine)
    return Result(bytes: bytes, lines: lines, seconds: monotonicSeconds() - start)
  }

  static func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
  }

  /// Writes a synthetic FHIR-like NDJSON file of about `approximateBytes` (deterministic for a
  /// seed): Observation/Condition/Patient/Encounter lines of ~1.2 KB with nested ids, contained
  /// resources, escaped strings, raw and \u-escaped unicode, and keys in varying order.
  /// Returns the number of lines written.
  @discardableResult
  public static func generateSample(path: String, approximateBytes: Int64, seed: UInt64 = 1) throws
    -> Int
  {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw NDJSONError.io(path: path, errno: errno) }
    defer { close(fd) }
    var state = seed
    func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    func hex(_ n: Int) -> String {
      var s = ""
      while s.count < n { s += String(next(), radix: 16) }
      return String(s.prefix(n))
    }
    let types = ["Observation", "Observation", "Observation", "Condition", "Patient", "Encounter"]
    let names = ["Jos\u{e9} Mar\u{ed}a", "\\u00c5sa \\u00d6berg", "\u{65e5}\u{672c} \u{592a}\u{90ce}", "O\\\"Brien", "Smith\\tJr"]
    var buffer: [UInt8] = []
    buffer.reserveCapacity(1 << 20)
    var written: Int64 = 0
    var lines = 0
    func flush() throws {
      var off = 0
      while off < buffer.count {
        let r = buffer.withUnsafeBytes { b -> Int in
          guard let base = b.baseAddress else { return 0 }
          return write(fd, base + off, b.count - off)
        }
        if r < 0 {
          if errno == EINTR { continue }
          throw NDJSONError.io(path: path, errno: errno)
        }
        off += r
      }
      written += Int64(buffer.count)
      buffer.removeAll(keepingCapacity: true)
    }
    while written + Int64(buffer.count) < approximateBytes {
      let type = types[Int(next() % UInt64(types.count))]
      let id = "\(hex(8))-\(hex(4))-\(hex(4))-\(hex(4))-\(hex(12))"
      let updated = "2024-0\(1 + next() % 9)-1\(next() % 10)T0\(next() % 10):1\(next() % 10):00.000+00:00"
      let meta = #""meta":{"versionId":"\#(1 + next() % 5)","lastUpdated":"\#(updated)","tag":[{"id":"t\#(hex(6))","system":"http://example.org/tags","code":"synthetic"}],"source":"urn:src:\#(hex(16))"}"#
      let name = names[Int(next() % UInt64(names.count))]
      let body = #""status":"final","extension":[{"id":"ext-\#(hex(6))","url":"http://hl7.org/fhir/StructureDefinition/x","valueString":"a \"quoted\" value with a backslash \\ and {braces} [and] brackets"}],"code":{"coding":[{"system":"http://loinc.org","code":"\#(next() % 99999)-\#(next() % 9)","display":"Some measurement of \#(name)"}],"text":"code text"},"subject":{"reference":"Patient/\#(hex(8))","display":"\#(name)"},"effectiveDateTime":"\#(updated)","valueQuantity":{"value":\#(next() % 1000).\#(next() % 100),"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"},"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">\#(name) \#(hex(200))</div>"}"#
      let contained =
        next() % 10 == 0
        ? #","contained":[{"resourceType":"Practitioner","id":"pr-\#(hex(6))","meta":{"versionId":"9","lastUpdated":"1999-01-01"},"name":[{"family":"\#(name)"}]}]"#
        : ""
      let line: String
      switch next() % 10 {
      case 0, 1, 2:  // 30 % do not start with resourceType/id
        line = #"{\#(meta),\#(body)\#(contained),"id":"\#(id)","resourceType":"\#(type)"}"#
      default:
        line = #"{"resourceType":"\#(type)","id":"\#(id)",\#(meta),\#(body)\#(contained)}"#
      }
      buffer.append(contentsOf: line.utf8)
      buffer.append(0x0A)
      lines += 1
      if buffer.count >= 1 << 20 { try flush() }
    }
    try flush()
    return lines
  }
}
