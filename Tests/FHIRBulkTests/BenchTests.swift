import Crypto
import Foundation
import Testing

@testable import FHIRBulk

/// Throughput against curl on loopback, 4 files in parallel. Not a test: runs only with
/// FHIRBULK_BENCH=1 (size per file in MB via FHIRBULK_BENCH_MB, default 100).
@Suite(.serialized) struct BenchTests {
  static var enabled: Bool { ProcessInfo.processInfo.environment["FHIRBULK_BENCH"] == "1" }

  @Test(.enabled(if: BenchTests.enabled)) func downloadThroughputVersusCurl() async throws {
    let mb = Int(ProcessInfo.processInfo.environment["FHIRBULK_BENCH_MB"] ?? "") ?? 100
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    let line = Data((#"{"resourceType":"Observation","id":"x","status":"final","code":{"text":""# + String(repeating: "a", count: 900) + "\"}}\n").utf8)
    let count = mb * 1_000_000 / line.count
    for i in 1...4 { s.on("GET", "/files/\(i)", respond: MockResponse(status: 200, body: .repeated(line: line, count: count))) }
    let output = (1...4).map { ("Observation", s.base + "/files/\($0)", Optional(count)) }
    let m = try Manifest.parse(Data(manifestJSON(s.base, output: output, requiresAccessToken: false).utf8))
    let total = Double(line.count * count * 4) / 1e6

    // Warm up both paths once.
    _ = try await makeClient(s).downloadAll(m, into: dir.path, parallel: 4, statusURL: nil)

    let clock = ContinuousClock()
    let t0 = clock.now
    let files = try await makeClient(s).downloadAll(m, into: dir.path, parallel: 4, statusURL: nil)
    let ours = PollPolicy.seconds(t0.duration(to: clock.now))
    #expect(files.count == 4 && files.allSatisfy { $0.lines == count })

    let t1 = clock.now
    let procs = try (1...4).map { i -> Process in
      let p = Process()
      p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
      p.arguments = ["-s", "-o", dir.path + "/curl.\(i)", s.base + "/files/\(i)"]
      try p.run()
      return p
    }
    for p in procs { p.waitUntilExit() }
    let curl = PollPolicy.seconds(t1.duration(to: clock.now))
    let hwm = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8))?
      .split(separator: "\n").first { $0.hasPrefix("VmHWM") } ?? "?"
    let report = String(
      format: "bench: %.0f MB in 4 files: BulkClient %.2f s (%.0f MB/s), curl %.2f s (%.0f MB/s), ratio %.2f; process %@\n",
      total, ours, total / ours, curl, total / curl, curl / ours, String(hwm))
    FileHandle.standardError.write(Data(report.utf8))
  }
}

/// Per-stage cost of the download path (FHIRBULK_BENCH=1): SHA-256, line verification, write(2).
@Suite struct StageBench {
  @Test(.enabled(if: BenchTests.enabled)) func stages() throws {
    let line = Data((#"{"resourceType":"Observation","id":"x","status":"final","code":{"text":""# + String(repeating: "a", count: 900) + "\"}}\n").utf8)
    var chunk = Data()
    while chunk.count < 64 << 10 { chunk.append(line) }
    let rounds = 1_000_000_000 / chunk.count
    let clock = ContinuousClock()
    var t = clock.now
    var hasher = SHA256()
    chunk.withUnsafeBytes { p in for _ in 0..<rounds { hasher.update(bufferPointer: p) } }
    _ = hasher.finalize()
    let sha = PollPolicy.seconds(t.duration(to: clock.now))
    t = clock.now
    var v = LineVerifier(type: "Observation", requireID: true, maxLineLength: 1 << 20)
    try chunk.withUnsafeBytes { p in for _ in 0..<rounds { try v.feed(p) } }
    let scan = PollPolicy.seconds(t.duration(to: clock.now))
    let mb = Double(rounds * chunk.count) / 1e6
    FileHandle.standardError.write(Data(String(format: "stages: sha256 %.0f MB/s, verify %.0f MB/s\n", mb / sha, mb / scan).utf8))
  }
}
