import Crypto
import Foundation
import Testing

@testable import FHIRBulk

func patients(_ n: Int, type: String = "Patient") -> [String] {
  (1...n).map { #"{"resourceType":"\#(type)","id":"p\#($0)","meta":{"lastUpdated":"2024-01-01T00:00:00Z"}}"# }
}

func gzip(_ data: Data) throws -> Data {
  let p = Process()
  p.executableURL = URL(fileURLWithPath: "/usr/bin/gzip")
  p.arguments = ["-c"]
  let inPipe = Pipe()
  let outPipe = Pipe()
  p.standardInput = inPipe
  p.standardOutput = outPipe
  try p.run()
  inPipe.fileHandleForWriting.write(data)
  try inPipe.fileHandleForWriting.close()
  let out = outPipe.fileHandleForReading.readDataToEndOfFile()
  p.waitUntilExit()
  return out
}

func sha256Hex(_ d: Data) -> String { SHA256.hash(data: d).map { String(format: "%02x", $0) }.joined() }

/// File downloads (C42–C49).
@Suite struct DownloadTests {
  @Test func c43_c44_downloadVerifiesAndRenames() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    let lines = patients(3)
    let body = Data((lines.joined(separator: "\n\n") ).utf8)  // blank line, no final newline (C44)
    s.on("GET", "/files/p1", respond: MockResponse(status: 200, headers: [("Content-Type", "application/fhir+ndjson")], body: .data(body)))
    let client = makeClient(s)
    let m = try Manifest.parse(Data(manifestJSON(s.base, output: [("Patient", s.base + "/files/p1", 3)]).utf8))
    let files = try await client.downloadAll(m, into: dir.path, statusURL: nil)
    #expect(files.count == 1)
    let f = try #require(files.first)
    #expect(f.lines == 3 && f.bytes == Int64(body.count) && f.relativePath == "Patient.1.ndjson")
    #expect(f.sha256 == sha256Hex(body))
    #expect(try Data(contentsOf: URL(fileURLWithPath: f.path)) == body)
    #expect(dir.files() == ["Patient.1.ndjson"])
    let r = try #require(s.requests(path: "/files/p1").first)
    #expect(r.header("Authorization") == "Bearer secret-token")
    #expect(r.header("Accept") == "application/fhir+ndjson")
  }

  @Test func c43_noTokenWhenNotRequired() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    s.on("GET", "/files/p1", respond: .ndjson(patients(1)))
    let m = try Manifest.parse(Data(manifestJSON(s.base, output: [("Patient", s.base + "/files/p1", 1)], requiresAccessToken: false).utf8))
    try await makeClient(s).downloadAll(m, into: dir.path, statusURL: nil)
    #expect(s.requests(path: "/files/p1").first?.header("Authorization") == nil)
  }

  @Test func c44_wrongTypeOrTooLongLineIsRefusedAndNothingIsLeft() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    s.on("GET", "/files/bad", respond: .ndjson(patients(2) + patients(1, type: "Observation")))
    s.on("GET", "/files/notjson", respond: .ndjson(["[1,2,3]"]))
    let client = BulkClient(
      endpoint: BulkEndpoint(baseURL: s.base + "/fhir"), pollPolicy: .fast(),
      downloadPolicy: DownloadPolicy(maxAttempts: 3, backoff: .fast(), maxLineLength: 1000))
    let bad = PlannedFile(kind: .output, item: ManifestItem(type: "Patient", url: s.base + "/files/bad"), ordinal: 1, relativePath: "Patient.1.ndjson")
    do {
      _ = try await client.download(bad, requiresAccessToken: false, into: dir.path, statusURL: nil)
      Issue.record("expected failure")
    } catch let e as BulkError {
      #expect(e.description.contains("line 3 has resourceType 'Observation', expected Patient"))
    }
    var notJSON = bad
    notJSON.item.url = s.base + "/files/notjson"
    await #expect(throws: BulkError.self) { _ = try await client.download(notJSON, requiresAccessToken: false, into: dir.path, statusURL: nil) }
    s.on("GET", "/files/long", respond: .ndjson([#"{"resourceType":"Patient","text":""# + String(repeating: "x", count: 5000) + #""}"#]))
    var long = bad
    long.item.url = s.base + "/files/long"
    do {
      _ = try await client.download(long, requiresAccessToken: false, into: dir.path, statusURL: nil)
      Issue.record("expected failure")
    } catch let e as BulkError { #expect(e.description.contains("longer than 1000")) }
    // Verification failures are not retried, and no file (final or temporary) remains.
    #expect(s.requests(path: "/files/bad").count == 1)
    #expect(dir.files().isEmpty)
  }

  @Test func c42_countMismatchWarns() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    let events = EventLog()
    s.on("GET", "/files/p", respond: .ndjson(patients(2)))
    let m = try Manifest.parse(Data(manifestJSON(s.base, output: [("Patient", s.base + "/files/p", 3)]).utf8))
    // Strict counting is the default now (BodyIntegrityTests); this is the per-server relaxed mode.
    var relaxed = DownloadPolicy.fast()
    relaxed.strictCount = false
    try await makeClient(s, events: events, downloadPolicy: relaxed).downloadAll(m, into: dir.path, statusURL: nil)
    #expect(events.warnings.contains { $0.contains("count is 3 but the file has 2") })
  }

  @Test func c45_gzipIsDecoded() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    let plain = Data(patients(500).map { $0 + "\n" }.joined().utf8)
    let packed = try gzip(plain)
    #expect(packed.count < plain.count / 5)
    s.on("GET", "/files/gz", respond: MockResponse(status: 200, headers: [("Content-Encoding", "gzip"), ("Content-Type", "application/fhir+ndjson")], body: .data(packed)))
    let m = try Manifest.parse(Data(manifestJSON(s.base, output: [("Patient", s.base + "/files/gz", 500)]).utf8))
    let f = try #require(try await makeClient(s).downloadAll(m, into: dir.path, statusURL: nil).first)
    #expect(f.lines == 500 && f.bytes == Int64(plain.count) && f.sha256 == sha256Hex(plain))
    #expect(s.requests(path: "/files/gz").first?.header("Accept-Encoding")?.contains("gzip") == true)
  }

  @Test func c46_crossOriginRedirectDropsAuthorization() async throws {
    let s = try await MockServer.start()
    let storage = try await MockServer.start()
    defer { Task { await s.stop(); await storage.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    s.on("GET", "/files/r", respond: .status(302, [("Location", "/files/same")]))
    s.on("GET", "/files/same", respond: .status(307, [("Location", storage.base + "/bucket/obj?sig=1")]))
    storage.on("GET", "/bucket/obj", respond: .ndjson(patients(2)))
    let m = try Manifest.parse(Data(manifestJSON(s.base, output: [("Patient", s.base + "/files/r", 2)]).utf8))
    try await makeClient(s).downloadAll(m, into: dir.path, statusURL: nil)
    #expect(s.requests(path: "/files/same").first?.header("Authorization") == "Bearer secret-token")
    let foreign = try #require(storage.requests(path: "/bucket/obj").first)
    #expect(foreign.header("Authorization") == nil)
    #expect(foreign.uri == "/bucket/obj?sig=1")
  }

  @Test func c46_redirectLoopsAreBounded() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    s.on("GET", "/files/loop", respond: .status(302, [("Location", "/files/loop")]))
    let m = try Manifest.parse(Data(manifestJSON(s.base, output: [("Patient", s.base + "/files/loop", 2)]).utf8))
    await #expect(throws: BulkError.self) { try await makeClient(s).downloadAll(m, into: dir.path, statusURL: nil) }
    #expect(s.requests(path: "/files/loop").count == 6)
  }

  @Test func c47_expiredLinkRepollsStatusOnceForAFreshURL() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    s.on("GET", "/files/old", respond: .outcome(410, code: "expired", diagnostics: "file_expired"))
    s.on("GET", "/files/new", respond: .ndjson(patients(2)))
    s.on("GET", "/status/1", respond: .json(200, manifestJSON(s.base, output: [("Patient", s.base + "/files/new", 2)])))
    let m = try Manifest.parse(Data(manifestJSON(s.base, output: [("Patient", s.base + "/files/old", 2)]).utf8))
    let files = try await makeClient(s).downloadAll(m, into: dir.path, statusURL: s.base + "/status/1")
    #expect(files.first?.url == s.base + "/files/new")
    #expect(s.requests(path: "/status/1").count == 1)
    #expect(s.requests(path: "/files/old").count == 1)
  }

  @Test func c48_midBodyResetIsRetriedAndNoPartialFileRemains() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    let events = EventLog()
    let full = patients(4).map { $0 + "\n" }.joined()
    s.on(
      "GET", "/files/flaky",
      sequence: [
        MockResponse(status: 200, body: .chunks([Data(full.prefix(100).utf8)], thenFail: true)),
        .outcome(503, code: "transient", diagnostics: "busy", [("Retry-After", "1")]),
        .ndjson(patients(4)),
      ])
    let m = try Manifest.parse(Data(manifestJSON(s.base, output: [("Patient", s.base + "/files/flaky", 4)]).utf8))
    let files = try await makeClient(s, events: events, maxAttempts: 3).downloadAll(m, into: dir.path, statusURL: nil)
    #expect(files.first?.attempts == 3 && files.first?.lines == 4)
    #expect(events.retries.count == 2)
    #expect(dir.files() == ["Patient.1.ndjson"])
  }

  @Test func c48_persistentFailureReportsAndKeepsOtherFiles() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    let events = EventLog()
    s.on("GET", "/files/ok", respond: .ndjson(patients(1)))
    s.on("GET", "/files/down", respond: .text(500, "boom"))
    let m = try Manifest.parse(Data(manifestJSON(s.base, output: [("Patient", s.base + "/files/ok", 1), ("Patient", s.base + "/files/down", 1)]).utf8))
    do {
      try await makeClient(s, events: events, maxAttempts: 2).downloadAll(m, into: dir.path, statusURL: nil)
      Issue.record("expected failure")
    } catch let e as BulkError {
      #expect(e.description.hasPrefix("1 of 2 files failed"))
    }
    #expect(s.requests(path: "/files/down").count == 2)
    #expect(dir.files() == ["Patient.1.ndjson"])
    #expect(events.all.contains { if case .downloadError = $0 { return true } else { return false } })
  }

  @Test func c49_parallelismIsCappedAndSkipResumes() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    for i in 1...12 {
      s.on("GET", "/files/\(i)") { _, _ in
        try? await Task.sleep(for: .milliseconds(30))
        return .ndjson(patients(i, type: "Observation"))
      }
    }
    let output = (1...12).map { ("Observation", s.base + "/files/\($0)", Optional($0)) }
    let m = try Manifest.parse(Data(manifestJSON(s.base, output: output, deleted: [("Bundle", s.base + "/files/del")]).utf8))
    s.on("GET", "/files/del", respond: .ndjson([#"{"resourceType":"Bundle","type":"transaction","entry":[]}"#]))
    let done = Locked<[String]>([])
    let files = try await makeClient(s).downloadAll(
      m, into: dir.path, parallel: 3, statusURL: nil, skip: ["Observation.1.ndjson", "Observation.2.ndjson"]
    ) { f in done.withLock { $0.append(f.relativePath) } }
    #expect(files.count == 11)
    #expect(s.maxConcurrent <= 3 && s.maxConcurrent >= 2)
    #expect(s.requests(path: "/files/1").isEmpty && s.requests(path: "/files/2").isEmpty)
    #expect(Set(done.current).count == 11)
    #expect(dir.files().contains("deleted/Bundle.1.ndjson"))
    #expect(files.filter { $0.kind == .output }.reduce(0) { $0 + $1.lines } == (3...12).reduce(0, +))
  }
}
