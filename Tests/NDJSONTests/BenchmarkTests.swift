import Foundation
import Testing

@testable import NDJSON

@Suite struct BenchmarkSupportTests {
  /// The benchmark's generated file is valid NDJSON and the scanner reads it as JSONSerialization does.
  @Test func generatedSampleIsValid() throws {
    let dir = try TempDir()
    defer { dir.cleanup() }
    let path = dir.path("sample.ndjson")
    let n = try NDJSONBenchmark.generateSample(path: path, approximateBytes: 300_000, seed: 3)
    #expect(n > 100)
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    var lines: [ScannedLine] = []
    try NDJSONFile.scan(path: path) { lines.append($0) }
    #expect(lines.count == n)
    for l in lines {
      let bytes = [UInt8](data[Int(l.offset)..<(Int(l.offset) + l.length)])
      let truth = try #require(Truth.of(bytes))
      #expect(truth.resourceType == l.resourceType && truth.id == l.id)
      #expect(truth.versionId == l.versionId && truth.lastUpdated == l.lastUpdated)
      #expect(truth.patientReference == l.patientReference)
    }
    #expect(lines.allSatisfy { $0.patientReference?.hasPrefix("Patient/") == true })
    let count = try NDJSONBenchmark.benchmarkCount(path: path)
    #expect(count.lines == n && count.bytes == Int64(data.count))
    #expect(try NDJSONFile.countByType(path: path).values.reduce(0, +) == n)
  }

  @Test func fieldSelection() throws {
    var s = NDJSONLineScanner(computeHash: false, fields: [.resourceType, .lastUpdated])
    var got: [ScannedLine] = []
    let text = #"{"resourceType":"Patient","id":"p","meta":{"versionId":"1","lastUpdated":"L"}}"#
    try Array(text.utf8).withUnsafeBytes { try s.feed($0) { got.append($0) } }
    try s.finish { got.append($0) }
    #expect(got.count == 1)
    #expect(got.first?.resourceType == "Patient" && got.first?.lastUpdated == "L")
    #expect(got.first?.id == nil && got.first?.versionId == nil)
  }

  /// Throughput (not a correctness test). Run in release:
  /// COHORT_BENCH=1 [COHORT_BENCH_MB=500] swift test -c release --disable-xctest --filter throughput
  @Test(.enabled(if: ProcessInfo.processInfo.environment["COHORT_BENCH"] != nil))
  func throughput() throws {
    let mb = Int64(ProcessInfo.processInfo.environment["COHORT_BENCH_MB"] ?? "500") ?? 500
    let path = "/tmp/cohort-ndjson-bench-\(mb)mb.ndjson"
    if !FileManager.default.fileExists(atPath: path) {
      try NDJSONBenchmark.generateSample(path: path, approximateBytes: mb * 1_000_000)
    }
    for _ in 0..<2 {
      let c = try NDJSONBenchmark.benchmarkCount(path: path)
      print("countByType: \(c.bytes) bytes, \(c.lines) lines, \(c.seconds) s, \(Int(c.megabytesPerSecond)) MB/s")
      let s = try NDJSONBenchmark.benchmarkScan(path: path)
      print("scan + SHA-256: \(s.bytes) bytes, \(s.lines) lines, \(s.seconds) s, \(Int(s.megabytesPerSecond)) MB/s")
    }
  }
}
