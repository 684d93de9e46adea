import CohortTestSupport
import AsyncHTTPClient
import Foundation
import NIOHTTP1
import Testing

@testable import BulkServer

/// The built-in server's conformance fixes (issue 11 item 11).
@Suite struct ConformanceTests {
  /// Paths (e.g. `rest[0].resource[3].interaction`) of empty arrays, empty objects, empty strings and nulls.
  static func invalidFHIRJSON(_ value: Any, at path: String = "") -> [String] {
    switch value {
    case let a as [Any]:
      if a.isEmpty { return [path + ": []"] }
      return a.enumerated().flatMap { invalidFHIRJSON($0.element, at: "\(path)[\($0.offset)]") }
    case let o as [String: Any]:
      if o.isEmpty { return [path + ": {}"] }
      return o.sorted { $0.key < $1.key }.flatMap { invalidFHIRJSON($0.value, at: path + "." + $0.key) }
    case let s as String:
      return s.isEmpty ? [path + ": \"\""] : []
    case is NSNull:
      return [path + ": null"]
    default:
      return []
    }
  }

  /// A CapabilityStatement that is valid FHIR JSON (no empty arrays such as `interaction: []`).
  @Test func capabilityStatementIsValidFHIRJSON() async throws {
    for auth in [AuthMode.none, .bearer(token: "t")] {
      try await withServer({ $0.auth = auth }) { s in
        let m = try await HTTP.get(s.baseURL + "/metadata")
        let json = try #require(try JSONSerialization.jsonObject(with: m.body) as? [String: Any])
        #expect(Self.invalidFHIRJSON(json) == [])
        for key in ["status", "date", "kind", "fhirVersion", "format"] { #expect(json[key] != nil, "\(key)") }
        let rest = try #require((json["rest"] as? [[String: Any]])?.first)
        let types = (rest["resource"] as? [[String: Any]] ?? []).compactMap { $0["type"] as? String }
        #expect(types.count == Set(types).count)  // each type once
        #expect(types.contains("Group") && types.contains("Patient"))
        let group = (rest["resource"] as? [[String: Any]] ?? []).first { $0["type"] as? String == "Group" }
        #expect((group?["interaction"] as? [[String: Any]])?.count == 2)
      }
    }
  }

  /// C38: the complete-status answer carries an `Expires` HTTP date; a 202 does not.
  @Test func expiresOnTheManifest() async throws {
    try await withServer { s in
      let k = try await HTTP.kickoff(s.baseURL + "/$export?_type=Patient")
      let location = try #require(k.header("Content-Location"))
      let pending = try await HTTP.get(location)
      #expect(pending.status == 202)
      #expect(pending.header("Expires") == nil)
      let (m, _) = try await HTTP.poll(location)
      let expires = try #require(m.header("Expires"))
      let formatter = DateFormatter()
      formatter.locale = Locale(identifier: "en_US_POSIX")
      formatter.timeZone = TimeZone(identifier: "GMT")
      formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
      let date = try #require(formatter.date(from: expires), "\(expires)")
      #expect(formatter.string(from: date) == expires)
      #expect(date > Date())
    }
  }

  @Test func httpDateFormat() {
    #expect(HTTPDate.format(Date(timeIntervalSince1970: 784_111_777)) == "Sun, 06 Nov 1994 08:49:37 GMT")
    #expect(HTTPDate.format(Date(timeIntervalSince1970: 0)) == "Thu, 01 Jan 1970 00:00:00 GMT")
    #expect(HTTPDate.format(Date(timeIntervalSince1970: 1_772_323_200)) == "Sun, 01 Mar 2026 00:00:00 GMT")
  }

  /// C45: gzip only when Accept-Encoding allows it (`gzip;q=0` refuses); `Vary: Accept-Encoding` on files.
  @Test func gzipNegotiationAndVary() async throws {
    try await withServer({ $0.faults.gzip = true }) { s in
      let (m, _) = try await HTTP.manifest(s.baseURL + "/$export?_type=Patient")
      let url = try #require(outputURLs(m).first)
      let cases: [(String?, Bool)] = [
        (nil, false), ("gzip", true), ("gzip;q=0", false), ("gzip; q=0.0", false), ("identity", false), ("*", true),
        ("*;q=0", false), ("deflate, gzip;q=0.5", true), ("*, gzip;q=0", false), ("GZIP", true), ("br;q=1, *;q=0.1", true),
      ]
      for (accept, zipped) in cases {
        let r = try await HTTP.get(url, headers: accept.map { ["Accept-Encoding": $0] } ?? [:])
        #expect(r.status == 200)
        #expect((r.header("Content-Encoding") == "gzip") == zipped, "Accept-Encoding: \(accept ?? "none")")
        #expect((r.body.prefix(2) == Data([0x1F, 0x8B])) == zipped, "Accept-Encoding: \(accept ?? "none")")
        #expect(r.header("Vary") == "Accept-Encoding")
      }
    }
    #expect(HTTPNegotiation.acceptsGzip("x-gzip"))
    #expect(!HTTPNegotiation.acceptsGzip("gzip;q=0, *"))
  }

  /// C17: `_outputFormat=application/fhir+ndjson` with a literal '+' (read as a space) and with %2B.
  @Test func outputFormatWithPlus() async throws {
    try await withServer { s in
      for raw in ["application/fhir+ndjson", "application%2Ffhir%2Bndjson", "application/fhir%2Bndjson"] {
        let r = try await HTTP.kickoff(s.baseURL + "/$export?_type=Patient&_outputFormat=" + raw)
        #expect(r.status == 202, "\(raw): \(r.text)")
      }
      let bad = try await HTTP.kickoff(s.baseURL + "/$export?_outputFormat=application/fhir+json")
      #expect(bad.status == 400)
    }
  }
}

/// `cohort serve` as a process: SIGTERM cleans up like SIGINT; the bearer token stays out of `ps`.
@Suite struct ServeProcessTests {
  static var binary: String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent(".build/debug/cohort").path
  }

  /// A running `cohort -c 'serve …'` with its own TMPDIR.
  final class ServeProcess {
    let process = Process()
    let out = Pipe()
    let err = Pipe()
    let tmp: String
    let cwd: String

    init(_ line: String, environment: [String: String] = [:]) throws {
      cwd = try tempDirectory()
      tmp = cwd + "/tmp"
      try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
      process.executableURL = URL(fileURLWithPath: ServeProcessTests.binary)
      process.arguments = ["-c", line]
      process.currentDirectoryURL = URL(fileURLWithPath: cwd)
      var env = ProcessInfo.processInfo.environment
      env["COHORT_WORKSPACE"] = nil
      env["COHORT_HISTFILE"] = cwd + "/history"
      env["TMPDIR"] = tmp + "/"
      for (k, v) in environment { env[k] = v }
      process.environment = env
      process.standardOutput = out
      process.standardError = err
      process.standardInput = FileHandle.nullDevice
      try process.run()
    }

    /// Reads stdout until the "serving URL" line (the process ends by itself through --exit-after).
    func baseURL() throws -> String {
      var text = ""
      for _ in 0..<1000 {
        let data = out.fileHandleForReading.availableData
        if data.isEmpty { break }
        text += String(decoding: data, as: UTF8.self)
        if let range = text.range(of: #"serving (http://\S+)"#, options: .regularExpression) {
          return String(text[range].dropFirst("serving ".count))
        }
      }
      throw TestFailure("cohort serve printed no URL: \(text) \(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))")
    }

    deinit { try? FileManager.default.removeItem(atPath: cwd) }

    var serverFolders: [String] {
      ((try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? []).filter { $0.hasPrefix("cohort-bulkserver-") }
    }

    func finish() -> (status: Int32, stderr: String) {
      let e = err.fileHandleForReading.readDataToEndOfFile()
      _ = out.fileHandleForReading.readDataToEndOfFile()
      process.waitUntilExit()
      return (process.terminationStatus, String(decoding: e, as: UTF8.self))
    }
  }

  static func commandLine(_ pid: Int32) -> String {
    let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
    return String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
  }

  /// SIGTERM stops the foreground server and removes its temporary folder; the token comes from the environment.
  @Test func sigtermCleansUpAndTokenFromEnvironment() async throws {
    let token = "env-token-" + UUID().uuidString
    let p = try ServeProcess(
      "serve --port 0 --patients 5 --auth bearer --bearer-token-env SERVE_TEST_TOKEN --exit-after 60",
      environment: ["SERVE_TEST_TOKEN": token])
    let base = try p.baseURL()
    #expect(p.serverFolders.count == 1)
    #expect(!Self.commandLine(p.process.processIdentifier).contains(token))
    #expect(try await HTTP.kickoff(base + "/$export?_type=Patient", extra: ["Authorization": "Bearer " + token]).status == 202)
    #expect(try await HTTP.kickoff(base + "/$export?_type=Patient", extra: ["Authorization": "Bearer wrong"]).status == 401)
    kill(p.process.processIdentifier, SIGTERM)
    let (status, stderr) = p.finish()
    #expect(status == 128 + SIGTERM, "\(stderr)")
    #expect(p.serverFolders.isEmpty)
    #expect(stderr.contains("server stopped"))
    #expect(!stderr.contains(token))
  }

  /// SIGINT cleans up too; the token comes from a file.
  @Test func sigintCleansUpAndTokenFromFile() async throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let token = "file-token-" + UUID().uuidString
    try (token + "\n").write(toFile: dir + "/token", atomically: true, encoding: .utf8)
    let p = try ServeProcess("serve --port 0 --patients 5 --auth bearer --bearer-token-file \(dir)/token --exit-after 60")
    let base = try p.baseURL()
    #expect(p.serverFolders.count == 1)
    #expect(try await HTTP.kickoff(base + "/$export?_type=Patient", extra: ["Authorization": "Bearer " + token]).status == 202)
    kill(p.process.processIdentifier, SIGINT)
    let (_, stderr) = p.finish()
    #expect(p.serverFolders.isEmpty, "\(stderr)")
  }

  /// The old --bearer-token still works, with a warning; no token at all is refused with the new options named.
  @Test func bearerTokenOnTheCommandLineWarns() throws {
    let p = try ServeProcess("serve --port 0 --patients 5 --auth bearer --bearer-token visible --exit-after 0.1")
    _ = try p.baseURL()
    let (status, stderr) = p.finish()
    #expect(status == 0)
    #expect(stderr.contains("warning") && stderr.contains("--bearer-token-env"))
    let q = try ServeProcess("serve --port 0 --auth bearer --exit-after 0.1")
    let (status2, stderr2) = q.finish()
    #expect(status2 != 0)
    #expect(stderr2.contains("--bearer-token-env"))
    let r = try ServeProcess("serve --port 0 --auth bearer --bearer-token-env SERVE_TEST_UNSET_VARIABLE --exit-after 0.1")
    let (status3, stderr3) = r.finish()
    #expect(status3 != 0)
    #expect(stderr3.contains("SERVE_TEST_UNSET_VARIABLE"))
  }

  /// The modes and the new faults are `cohort serve` switches too.
  @Test func modeSwitches() async throws {
    let p = try ServeProcess("serve --port 0 --patients 5 --no-deleted --ignore-patient --fault poll429=1,escapes --exit-after 60")
    let base = try p.baseURL()
    let k = try await ModeTests.postKickoff(base + "/Group/all-patients/$export", patients: ["pat-1"], types: "Patient")
    let location = try #require(k.header("Content-Location"))
    let throttled = try await HTTP.get(location)
    #expect(throttled.status == 429)
    #expect(throttled.issue?.diagnostics.contains("\u{1B}[") == true)
    let (m, _) = try await HTTP.poll(location)
    let url = try #require(outputURLs(m).first)
    #expect(try await HTTP.get(url).lines.count == 5)  // patient= ignored
    kill(p.process.processIdentifier, SIGTERM)
    let (status, stderr) = p.finish()
    #expect(status == 128 + SIGTERM, "\(stderr)")
    #expect(p.serverFolders.isEmpty)
  }
}
