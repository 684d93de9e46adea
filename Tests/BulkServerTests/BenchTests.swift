import CohortTestSupport
import Foundation
import Testing

@testable import BulkServer

/// Not a test: figures for the benchmark note. Runs only with BULKSERVER_BENCH=1
/// (patients with BULKSERVER_BENCH_PATIENTS, default 20000).
@Suite struct BenchTests {
  static let enabled = ProcessInfo.processInfo.environment["BULKSERVER_BENCH"] == "1"
  static let patients = Int(ProcessInfo.processInfo.environment["BULKSERVER_BENCH_PATIENTS"] ?? "") ?? 20_000

  static func peakRSSMegabytes() -> Int {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
    return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
  }

  static func curl(_ url: String, to path: String = "/dev/null") throws -> (bytes: Int, seconds: Double) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    p.arguments = ["-s", "-o", path, "-w", "%{size_download} %{time_total}", url]
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    p.waitUntilExit()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: " ")
    return (Int(text.first ?? "0") ?? 0, Double(text.last ?? "0") ?? 0)
  }

  @Test(.enabled(if: enabled)) func generationAndServing() async throws {
    let g = BulkDataServer.benchmarkGenerate(patients: BenchTests.patients)
    print(String(format: "BENCH generate: %d patients, %d resources, %.1f MB in %.2f s = %.0f resources/s, %.1f MB/s; peak RSS %d MB",
      g.patients, g.resources, Double(g.bytes) / 1e6, g.seconds, g.resourcesPerSecond, g.megabytesPerSecond, BenchTests.peakRSSMegabytes()))
    try await withServer({ $0.patients = BenchTests.patients; $0.resourcesPerFile = 10_000_000; $0.pollsBeforeComplete = 0 }) { s in
      let start = Date()
      let k = try await HTTP.kickoff(s.baseURL + "/$export?_type=Observation")
      let location = try #require(k.header("Content-Location"))
      let (m, _) = try await HTTP.poll(location, limit: 10_000)
      let exportSeconds = Date().timeIntervalSince(start)
      let item = try #require((m.json["output"] as? [[String: Any]])?.first)
      let url = try #require(item["url"] as? String)
      print(String(format: "BENCH export: %d Observations written in %.2f s; peak RSS %d MB", item["count"] as? Int ?? 0, exportSeconds, BenchTests.peakRSSMegabytes()))
      _ = try BenchTests.curl(url)  // warm the page cache
      let ours = try BenchTests.curl(url)
      // Baseline: the same file from python's http.server.
      let dir = try tempDirectory()
      defer { try? FileManager.default.removeItem(atPath: dir) }
      let local = dir + "/Observation.ndjson"
      _ = try BenchTests.curl(url, to: local)
      let port = 18_000 + Int(getpid() % 1000)
      let py = Process()
      py.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
      py.arguments = ["-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", dir]
      py.standardOutput = FileHandle.nullDevice
      py.standardError = FileHandle.nullDevice
      try py.run()
      defer {
        kill(py.processIdentifier, SIGKILL)
        py.waitUntilExit()
      }
      try await Task.sleep(nanoseconds: 700_000_000)
      _ = try BenchTests.curl("http://127.0.0.1:\(port)/Observation.ndjson")
      let baseline = try BenchTests.curl("http://127.0.0.1:\(port)/Observation.ndjson")
      print(String(format: "BENCH serve: %.1f MB: BulkServer %.0f MB/s, python http.server %.0f MB/s (curl on loopback)",
        Double(ours.bytes) / 1e6, Double(ours.bytes) / ours.seconds / 1e6, Double(baseline.bytes) / baseline.seconds / 1e6))
    }
  }
}
