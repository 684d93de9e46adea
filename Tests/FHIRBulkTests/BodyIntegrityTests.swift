import Clocks
import Foundation
import Testing

@testable import FHIRBulk

/// Bodies must be complete and right (issue 11 item 2), resume keyed by what lands (item 4),
/// bounds (item 6).
@Suite struct BodyIntegrityTests {
  func single(_ s: MockServer, _ path: String, count: Int?, type: String = "Patient") throws -> Manifest {
    try Manifest.parse(Data(manifestJSON(s.base, output: [(type, s.base + path, count)]).utf8))
  }

  @Test func c42_countMismatchDownloadsOnceMoreThenFailsAsData() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    s.on("GET", "/files/short", respond: .ndjson(patients(2)))
    do {
      try await makeClient(s).downloadAll(try single(s, "/files/short", count: 3), into: dir.path, statusURL: nil)
      Issue.record("expected failure")
    } catch let e as BulkError {
      #expect(e.failureClass == .data && !e.isResumable)
      #expect(e.description.contains("count is 3"))
    }
    #expect(s.requests(path: "/files/short").count == 2)
    #expect(dir.files().isEmpty)

    // A second download that matches is kept.
    s.on("GET", "/files/flaky", sequence: [.ndjson(patients(2)), .ndjson(patients(3))])
    let files = try await makeClient(s).downloadAll(try single(s, "/files/flaky", count: 3), into: dir.path, statusURL: nil)
    #expect(files.first?.lines == 3)
    #expect(s.requests(path: "/files/flaky").count == 2)
  }

  @Test func c42_countMismatchOnlyWarnsWhenNotStrict() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    let events = EventLog()
    s.on("GET", "/files/p", respond: .ndjson(patients(2)))
    var policy = DownloadPolicy.fast()
    policy.strictCount = false
    try await makeClient(s, events: events, downloadPolicy: policy).downloadAll(try single(s, "/files/p", count: 3), into: dir.path, statusURL: nil)
    #expect(events.warnings.contains { $0.contains("count is 3 but the file has 2") })
  }

  @Test func c44_outputLinesNeedAnId() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    s.on("GET", "/files/noid", respond: .ndjson(patients(1) + [#"{"resourceType":"Patient","name":[{"family":"X"}]}"#]))
    do {
      try await makeClient(s).downloadAll(try single(s, "/files/noid", count: 2), into: dir.path, statusURL: nil)
      Issue.record("expected failure")
    } catch let e as BulkError {
      #expect(e.description.contains("line 2 (Patient) has no id"))
      #expect(e.failureClass == .data)
    }
    #expect(s.requests(path: "/files/noid").count == 1)
    // Error files (OperationOutcomes) need no id.
    s.on("GET", "/files/err", respond: .ndjson([#"{"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"processing","diagnostics":"skipped 1"}]}"#]))
    let m = try Manifest.parse(Data(manifestJSON(s.base, output: [], error: [("OperationOutcome", s.base + "/files/err")]).utf8))
    #expect(try await makeClient(s).downloadAll(m, into: dir.path, statusURL: nil).count == 1)
  }

  @Test func aBodyCutByTheConnectionCloseIsRetried() async throws {
    let full = patients(3).map { $0 + "\n" }.joined()
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/fhir+ndjson\r\nConnection: close\r\n\r\n"
    let raw = try RawHTTPServer(responses: [head + String(full.prefix(full.count - 20)), head + full])
    defer { raw.stop() }
    let dir = try TempDir()
    defer { dir.cleanup() }
    let events = EventLog()
    let client = BulkClient(
      endpoint: BulkEndpoint(baseURL: raw.base + "/fhir"), pollPolicy: .fast(), downloadPolicy: .fast(), events: events.record)
    let m = try Manifest.parse(
      Data(manifestJSON(raw.base, output: [("Patient", raw.base + "/files/p", nil)], requiresAccessToken: false).utf8))
    let files = try await client.downloadAll(m, into: dir.path, statusURL: nil)
    #expect(files.first?.lines == 3 && files.first?.attempts == 2)
    #expect(events.retries.first?.0.contains("middle of a line") == true)
    #expect(raw.connections == 2)
  }

  @Test func c49_skipIsKeyedByRelativePathNotURL() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    for i in 1...3 { s.on("GET", "/files/\(i)", respond: .ndjson(patients(1, type: "Observation"))) }
    let m = try Manifest.parse(
      Data(manifestJSON(s.base, output: (1...3).map { ("Observation", s.base + "/files/\($0)", 1) }).utf8))
    let files = try await makeClient(s).downloadAll(
      m, into: dir.path, statusURL: nil, skip: ["Observation.2.ndjson", s.base + "/files/3"])
    #expect(Set(files.map(\.relativePath)) == ["Observation.1.ndjson", "Observation.3.ndjson"])
    #expect(s.requests(path: "/files/2").isEmpty && s.requests(path: "/files/3").count == 1)
    #expect(files.first { $0.relativePath == "Observation.3.ndjson" }?.url == s.base + "/files/3")
  }

  @Test func aDataFaultStopsTheOtherDownloads() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    s.on("GET", "/files/bad", respond: .ndjson(patients(1, type: "Observation")))
    for i in 1...6 { s.on("GET", "/files/\(i)", respond: .ndjson(patients(1))) }
    let m = try Manifest.parse(
      Data(manifestJSON(s.base, output: [("Patient", s.base + "/files/bad", 1)] + (1...6).map { ("Patient", s.base + "/files/\($0)", 1) }).utf8))
    do {
      try await makeClient(s).downloadAll(m, into: dir.path, parallel: 1, statusURL: nil)
      Issue.record("expected failure")
    } catch let e as BulkError {
      guard case .downloadsFailed(_, _, let first) = e else {
        Issue.record("expected downloadsFailed, got \(e)")
        return
      }
      #expect(first.description.contains("resourceType 'Observation'"))
      #expect(e.failureClass == .data)
    }
    #expect((1...6).allSatisfy { s.requests(path: "/files/\($0)").isEmpty })
  }
}

/// DownloadPolicy bounds (issue 11 item 6): small limits against endless, trickling and
/// stalling bodies and a gzip bomb.
@Suite struct BoundsTests {
  func policy(_ change: (inout DownloadPolicy) -> Void) -> DownloadPolicy {
    var p = DownloadPolicy.fast(maxAttempts: 2)
    change(&p)
    return p
  }

  func limit(of error: any Error) -> DownloadLimit? {
    guard let e = error as? BulkError else { return nil }
    switch e {
    case .limitExceeded(_, let l): return l
    case .downloadsFailed(_, _, let first): return limit(of: first)
    default: return nil
    }
  }

  @Test func anEndlessBodyStopsAtTheFileSizeLimit() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    s.on("GET", "/files/endless", respond: MockResponse(status: 200, body: .endless(line: Data((patients(1)[0] + "\n").utf8))))
    let m = try Manifest.parse(Data(manifestJSON(s.base, output: [("Patient", s.base + "/files/endless", nil)]).utf8))
    let client = makeClient(s, downloadPolicy: policy { $0.maxFileBytes = 1 << 20 })
    do {
      try await client.downloadAll(m, into: dir.path, statusURL: nil)
      Issue.record("expected failure")
    } catch {
      #expect(limit(of: error) == .fileBytes(1 << 20))
      #expect((error as? BulkError)?.failureClass == .data)
      #expect(String(describing: error).contains("maximum file size"))
    }
    #expect(s.requests(path: "/files/endless").count == 1)
    #expect(dir.files().isEmpty)
  }

  @Test func aTricklingBodyStopsAtTheDurationLimit() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    let line = Data((patients(1)[0] + "\n").utf8)
    s.on("GET", "/files/slow", respond: MockResponse(status: 200, body: .trickle(first: line, line: line, count: 400, pause: .milliseconds(250))))
    let m = try Manifest.parse(Data(manifestJSON(s.base, output: [("Patient", s.base + "/files/slow", nil)]).utf8))
    // The watchdog runs on a virtual clock, advanced whenever it waits: the limits hold whatever the load. The body
    // takes 100 s of real time, so however slowly the virtual clock is advanced, the limit comes first.
    let clock = TestClock()
    let client = makeClient(
      s, downloadPolicy: policy { $0.maxDuration = .milliseconds(400); $0.stallTimeout = .seconds(5) }, clock: clock)
    do {
      try await advancingWhileAsleep(clock, by: .milliseconds(100)) {
        try await client.downloadAll(m, into: dir.path, statusURL: nil)
      }
      Issue.record("expected failure")
    } catch {
      #expect(limit(of: error) == .duration(seconds: 0))
    }
    #expect(s.requests(path: "/files/slow").count == 1)
    #expect(dir.files().isEmpty)
  }

  @Test func aStalledBodyIsRetriedThenFailsAsResumable() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    let line = Data((patients(1)[0] + "\n").utf8)
    s.on("GET", "/files/stall", respond: MockResponse(status: 200, body: .trickle(first: line, line: line, count: 1, pause: .seconds(120))))
    let m = try Manifest.parse(Data(manifestJSON(s.base, output: [("Patient", s.base + "/files/stall", nil)]).utf8))
    let clock = TestClock()
    let client = makeClient(s, downloadPolicy: policy { $0.stallTimeout = .milliseconds(300) }, clock: clock)
    do {
      try await advancingWhileAsleep(clock, by: .milliseconds(100)) {
        try await client.downloadAll(m, into: dir.path, statusURL: nil)
      }
      Issue.record("expected failure")
    } catch {
      #expect(limit(of: error) == .stall(seconds: 0))
      #expect((error as? BulkError)?.isResumable == true)
    }
    #expect(s.requests(path: "/files/stall").count == 2)
  }

  /// The Group read (streamed like a file, issue 12 item 2) stops at a stalled body instead of holding the export's
  /// commit forever; its spool file is removed.
  @Test func c59_aStalledGroupReadStopsAtTheStallLimit() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    let member = Data(#"{"entity":{"reference":"Patient/p"}},"#.utf8)
    s.on(
      "GET", "/fhir/Group/slow",
      respond: MockResponse(
        status: 200, body: .trickle(first: Data(#"{"resourceType":"Group","member":["#.utf8), line: member, count: 1, pause: .seconds(120))))
    let clock = TestClock()
    let client = makeClient(s, downloadPolicy: policy { $0.stallTimeout = .milliseconds(300) }, clock: clock)
    do {
      _ = try await advancingWhileAsleep(clock, by: .milliseconds(100)) {
        try await client.groupMembers(groupID: "slow", spoolFile: dir.path + "/g.json") { _ in }
      }
      Issue.record("expected the stall limit")
    } catch {
      #expect(limit(of: error) == .stall(seconds: 0))
    }
    #expect(!FileManager.default.fileExists(atPath: dir.path + "/g.json"))
  }

  @Test func c45_gzipBombAndDecompressedSizeAreBounded() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    let plain = Data(String(repeating: patients(1)[0] + "\n", count: 60_000).utf8)
    let packed = try gzip(plain)
    s.on("GET", "/files/bomb", respond: MockResponse(status: 200, headers: [("Content-Encoding", "gzip")], body: .data(packed)))
    let m = try Manifest.parse(Data(manifestJSON(s.base, output: [("Patient", s.base + "/files/bomb", nil)]).utf8))
    do {
      try await makeClient(s, downloadPolicy: policy { $0.maxCompressionRatio = 10 }).downloadAll(m, into: dir.path, statusURL: nil)
      Issue.record("expected failure")
    } catch {
      #expect(limit(of: error) == .compressionRatio(10))
    }
    do {
      try await makeClient(s, downloadPolicy: policy { $0.maxDecompressedBytes = 1 << 20 }).downloadAll(m, into: dir.path, statusURL: nil)
      Issue.record("expected failure")
    } catch {
      #expect(limit(of: error) == .decompressedBytes(1 << 20))
    }
    // Within the limits the same body decodes.
    let f = try await makeClient(s, downloadPolicy: policy { $0.maxCompressionRatio = 100_000 }).downloadAll(m, into: dir.path, statusURL: nil)
    #expect(f.first?.lines == 60_000 && f.first?.bytes == Int64(plain.count))
  }
}

/// Connections (issue 12 item 4, issue 15): fast, one-line connection and TLS errors.
@Suite struct ConnectionTests {
  @Test func aRefusedConnectionIsOneLineNamingTheHost() async throws {
    let port = try RawHTTPServer.closedPort()
    let client = BulkClient(
      endpoint: BulkEndpoint(baseURL: "http://127.0.0.1:\(port)/fhir"),
      httpClient: BulkClient.sharedHTTPClient(connectTimeout: .seconds(2)), pollPolicy: .fast())
    do {
      _ = try await client.kickoff(level: .system, parameters: ExportParameters())
      Issue.record("expected failure")
    } catch let e as BulkError {
      #expect(e.failureClass == .network)
      #expect(e.description.contains("127.0.0.1:\(port)"))
      #expect(e.description.contains("connection refused"))
      #expect(!e.description.contains("NIO") && !e.description.contains("\n"))
    }
  }

  @Test func aTLSFailureIsOneLineNamingTheHost() async throws {
    // A plain HTTP server that answers the ClientHello at once: the TLS handshake fails (it does not time out).
    let s = try RawHTTPServer(responses: ["HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"], waitForHead: false)
    defer { s.stop() }
    // The HTTP client retries failed handshakes until its connect deadline and then reports the last failure: a
    // deadline long enough for one handshake to fail even on a loaded machine.
    let client = BulkClient(
      endpoint: BulkEndpoint(baseURL: "https://127.0.0.1:\(s.port)/fhir"),
      httpClient: BulkClient.sharedHTTPClient(connectTimeout: .seconds(15)), pollPolicy: .fast())
    do {
      _ = try await client.kickoff(level: .system, parameters: ExportParameters())
      Issue.record("expected failure")
    } catch let e as BulkError {
      #expect(e.description.contains("127.0.0.1:\(s.port)"))
      #expect(e.description.contains("TLS"), "\(e.description)")
      #expect(!e.description.contains("NIOSSL") && !e.description.contains("\n"))
    }
  }

  @Test func theDefaultConnectTimeoutIsAFewSeconds() {
    #expect(BulkClient.defaultConfiguration.timeout.connect == .seconds(5))
    #expect(BulkClient.sharedHTTPClient(connectTimeout: .seconds(2)) === BulkClient.sharedHTTPClient(connectTimeout: .seconds(2)))
  }
}

/// `deleted` and `error` files (C54, C39, C40).
@Suite struct ServerFilesTests {
  func write(_ lines: [String]) throws -> (TempDir, String) {
    let dir = try TempDir()
    let path = dir.path + "/f.ndjson"
    try Data(lines.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: path))
    return (dir, path)
  }

  @Test func c54_deletedEntriesAreNormalised() throws {
    let bundle = #"{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"DELETE","url":"Patient/1"}},{"request":{"method":"delete","url":"https://x.org/fhir/Observation/o-2"}},{"request":{"method":"DELETE","url":"Condition/c.3/_history/4"}},{"request":{"method":"DELETE","url":"/fhir/Encounter/e4?x=1"}}]}"#
    let (dir, path) = try write([bundle, "", #"{"resourceType":"Bundle","type":"transaction"}"#])
    defer { dir.cleanup() }
    #expect(
      try DeletedFile.read(path: path) == [
        DeletedResource(type: "Patient", id: "1"), DeletedResource(type: "Observation", id: "o-2"),
        DeletedResource(type: "Condition", id: "c.3"), DeletedResource(type: "Encounter", id: "e4"),
      ])
  }

  @Test func c54_malformedDeletedEntriesAreDataFaultsNamingFileAndLine() throws {
    let good = #"{"resourceType":"Bundle","entry":[{"request":{"method":"DELETE","url":"Patient/1"}}]}"#
    let cases: [(String, String)] = [
      (#"{"resourceType":"Bundle","entry":[{"request":{"method":"DELETE","url":""}}]}"#, "empty or missing request.url"),
      (#"{"resourceType":"Bundle","entry":[{"request":{"method":"DELETE"}}]}"#, "empty or missing request.url"),
      (#"{"resourceType":"Bundle","entry":[{"request":{"method":"DELETE","url":"Patient"}}]}"#, "not Type/id"),
      (#"{"resourceType":"Bundle","entry":[{"request":{"method":"DELETE","url":"../../x/y z"}}]}"#, "not Type/id"),
      (#"{"resourceType":"Bundle","entry":[{"request":{"method":"PUT","url":"Patient/1"}}]}"#, "expected DELETE"),
      (#"{"resourceType":"Bundle","entry":[{"fullUrl":"Patient/1"}]}"#, "has no request"),
      (#"{"resourceType":"Patient","id":"1"}"#, "expected Bundle"),
      ("{not json", "not valid JSON"),
    ]
    for (line, why) in cases {
      let (dir, path) = try write([good, line])
      defer { dir.cleanup() }
      do {
        _ = try DeletedFile.read(path: path, name: "deleted/Bundle.1.ndjson")
        Issue.record("expected a data fault for \(line)")
      } catch let e as BulkError {
        guard case .dataFault(let file, let n, let reason) = e else {
          Issue.record("expected dataFault, got \(e)")
          continue
        }
        #expect(file == "deleted/Bundle.1.ndjson" && n == 2)
        #expect(reason.contains(why), "\(reason)")
        #expect(!e.isResumable)
      }
    }
  }

  @Test func c40_errorFileSeveritiesAndNotes() throws {
    let (dir, path) = try write([
      #"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception","diagnostics":"Observation export failed"}]}"#,
      #"{"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"processing","diagnostics":"1 resource skipped"},{"severity":"information","code":"informational","diagnostics":"done"}]}"#,
      #"{"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"processing","diagnostics":"1 resource skipped"}]}"#,
    ])
    defer { dir.cleanup() }
    let s = try OperationOutcomeFile.summarize(path: path)
    #expect(s.hasErrors && s.errorIssues == 1 && s.outcomes == 3)
    #expect(s.noteIssues == 3 && s.notes.count == 2)
    #expect(s.errors == ["error exception: Observation export failed"])
    let (dir2, infoOnly) = try write([#"{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational","diagnostics":"ok"}]}"#])
    defer { dir2.cleanup() }
    #expect(!(try OperationOutcomeFile.summarize(path: infoOnly).hasErrors))
  }

  @Test func errorFileWarningsAreSurfacedOnce() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    let events = EventLog()
    let warn = #"{"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"processing","diagnostics":"Condition?code filter ignored"}]}"#
    s.on("GET", "/files/e1", respond: .ndjson([warn, warn]))
    s.on("GET", "/files/e2", respond: .ndjson([warn]))
    let m = try Manifest.parse(
      Data(manifestJSON(s.base, output: [], error: [("OperationOutcome", s.base + "/files/e1"), ("OperationOutcome", s.base + "/files/e2")]).utf8))
    try await makeClient(s, events: events).downloadAll(m, into: dir.path, statusURL: nil)
    #expect(events.warnings.filter { $0.contains("Condition?code filter ignored") }.count == 1)
  }
}

@Suite struct FileDigestTests {
  @Test func recordedFilesCanBeReVerified() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let dir = try TempDir()
    defer { dir.cleanup() }
    s.on("GET", "/files/p", respond: .ndjson(patients(3)))
    let m = try Manifest.parse(Data(manifestJSON(s.base, output: [("Patient", s.base + "/files/p", 3)]).utf8))
    let f = try #require(try await makeClient(s).downloadAll(m, into: dir.path, statusURL: nil).first)
    #expect(FileDigest.matches(path: f.path, bytes: f.bytes, sha256: f.sha256))
    try Data("{}\n".utf8).write(to: URL(fileURLWithPath: f.path))
    #expect(!FileDigest.matches(path: f.path, bytes: f.bytes, sha256: f.sha256))
    #expect(!FileDigest.matches(path: dir.path + "/missing", bytes: 0, sha256: ""))
  }
}
