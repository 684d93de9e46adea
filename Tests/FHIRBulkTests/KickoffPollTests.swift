import Clocks
import Foundation
import Testing

@testable import FHIRBulk

/// Kick-off, status polling and DELETE against the scriptable mock (C10, C13–C16, C23–C36, C64).
@Suite struct KickoffPollTests {
  @Test func c15_c16_c23_getKickoffHeadersAndVerbatimStatusURL() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let status = s.base + "/fhir/$export-poll-status?_id=abc123"
    s.on("GET", "/fhir/Group/g1/$export", respond: .status(202, [("Content-Location", status)]))
    let client = makeClient(s)
    let got = try await client.kickoff(level: .group("g1"), parameters: ExportParameters(types: ["Patient"]))
    #expect(got == status)
    let r = try #require(s.requests("GET", path: "/fhir/Group/g1/$export").first)
    #expect(r.uri == "/fhir/Group/g1/$export?_type=Patient")
    #expect(r.header("Accept") == "application/fhir+json")
    #expect(r.header("Prefer") == "respond-async")
    #expect(r.header("Authorization") == "Bearer secret-token")
    #expect(r.header("User-Agent") == "cohort-test/1")
  }

  @Test func c16_lenientPrefer() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    s.on("GET", "/fhir/$export", respond: .status(202, [("Content-Location", s.base + "/st/1")]))
    let client = BulkClient(
      endpoint: BulkEndpoint(baseURL: s.base + "/fhir", lenient: true), pollPolicy: .fast())
    _ = try await client.kickoff(level: .system, parameters: ExportParameters())
    #expect(s.requests(path: "/fhir/$export").first?.header("Prefer") == "respond-async, handling=lenient")
  }

  @Test func c13_postKickoffSendsParameters() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    s.on("POST", "/fhir/Patient/$export", respond: .status(202, [("Content-Location", s.base + "/st/1")]))
    let client = makeClient(s, method: .post)
    _ = try await client.kickoff(level: .patient, parameters: ExportParameters(types: ["Patient"], patients: ["Patient/7"]))
    let r = try #require(s.requests("POST").first)
    #expect(r.header("Content-Type") == "application/fhir+json")
    #expect(r.query == nil)
    let body = String(decoding: r.body, as: UTF8.self)
    #expect(body.contains(#""resourceType":"Parameters""#) && body.contains("Patient/7"))
  }

  @Test func c19_invalidParametersNeverReachTheServer() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let client = makeClient(s)
    await #expect(throws: BulkError.self) {
      _ = try await client.kickoff(level: .system, parameters: ExportParameters(types: ["Nope"]))
    }
    await #expect(throws: BulkError.self) {
      _ = try await client.kickoff(level: .system, parameters: ExportParameters(since: "2024-01-15"))
    }
    #expect(s.requests().isEmpty)
  }

  @Test func c24_kickoffResponsesThatBreakTheProtocol() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let client = makeClient(s)
    s.on("GET", "/fhir/$export", respond: .status(202))
    do {
      _ = try await client.kickoff(level: .system, parameters: ExportParameters())
      Issue.record("expected failure")
    } catch let e as BulkError { #expect(e.description.contains("without a Content-Location")) }
    s.on("GET", "/fhir/$export", respond: .status(202, [("Content-Location", "../jobs/9")]))
    #expect(try await client.kickoff(level: .system, parameters: ExportParameters()) == s.base + "/jobs/9")
    s.on("GET", "/fhir/$export", respond: .json(200, "{}"))
    do {
      _ = try await client.kickoff(level: .system, parameters: ExportParameters())
      Issue.record("expected failure")
    } catch let e as BulkError { #expect(e.description.contains("HTTP 200 instead of 202")) }
  }

  @Test func c25_serverErrorsCarryDiagnosticsAndCodes() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let client = makeClient(s)
    s.on("GET", "/fhir/Group/missing/$export", respond: .outcome(404, code: "not-found", diagnostics: "Group missing is unknown"))
    do {
      _ = try await client.kickoff(level: .group("missing"), parameters: ExportParameters())
      Issue.record("expected failure")
    } catch let e as BulkError {
      #expect(e.httpStatus == 404)
      #expect(e.issueCodes == ["not-found"])
      #expect(e.description.contains("Group missing is unknown"))
      #expect(e.description.contains("Group id"))
      #expect(!e.description.contains("\n"))
    }
    #expect(s.requests().count == 1)
  }

  @Test func c27_plainTextGatewayErrorReportedCleanly() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let events = EventLog()
    let client = makeClient(s, events: events)
    s.on("GET", "/fhir/$export", respond: .text(502, "Bad Gateway\nupstream down"))
    do {
      _ = try await client.kickoff(level: .system, parameters: ExportParameters())
      Issue.record("expected failure")
    } catch let e as BulkError {
      #expect(e.description.contains("HTTP 502 (Bad Gateway upstream down)"))
      #expect(e.isTransient)
    }
    // C25: 5xx retried a bounded number of times.
    #expect(s.requests().count == 4)
    #expect(events.retries.count == 3)
  }

  @Test func c26_kickoff429WaitsAndRetries() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let events = EventLog()
    let client = makeClient(s, events: events)
    s.on(
      "GET", "/fhir/$export",
      sequence: [.text(429, "Too many requests", [("Retry-After", "2")]), .status(202, [("Content-Location", s.base + "/st")])])
    _ = try await client.kickoff(level: .system, parameters: ExportParameters())
    #expect(s.requests().count == 2)
    // Retry-After 2 clamped to the test policy's 50 ms maximum.
    #expect(events.retries.first?.1 == .milliseconds(50))
  }

  @Test func c10_a401RenewsTheTokenOnceAndRetriesOnce() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let tokens = CountingTokens()
    let client = makeClient(s, auth: tokens)
    s.on("GET", "/fhir/$export", sequence: [.text(401, "request_expired_token"), .status(202, [("Content-Location", s.base + "/st")])])
    _ = try await client.kickoff(level: .system, parameters: ExportParameters())
    #expect(tokens.calls == 2)
    #expect(s.requests().map { $0.header("Authorization") } == ["Bearer tok-1", "Bearer tok-2"])

    s.on("GET", "/fhir/Patient/$export", respond: .text(401, "invalid token"))
    do {
      _ = try await client.kickoff(level: .patient, parameters: ExportParameters())
      Issue.record("expected failure")
    } catch let e as BulkError {
      #expect(e.httpStatus == 401 && e.description.contains("invalid token"))
    }
    #expect(s.requests(path: "/fhir/Patient/$export").count == 2)
  }

  @Test func tokenNeverAppearsInErrorsOrEvents() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let events = EventLog()
    let client = makeClient(s, events: events)
    s.on("GET", "/fhir/$export", respond: .outcome(403, code: "forbidden", diagnostics: "token secret-token lacks scope"))
    do {
      _ = try await client.kickoff(level: .system, parameters: ExportParameters())
      Issue.record("expected failure")
    } catch let e as BulkError {
      #expect(!e.description.contains("secret-token"))
      #expect(e.description.contains("token *** lacks scope"))
    }
    #expect(!String(describing: events.all).contains("secret-token"))
  }

  @Test func c28_c29_pollingShowsProgressAndIgnores202Bodies() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let events = EventLog()
    let client = makeClient(s, events: events)
    let manifest = manifestJSON(s.base, output: [("Patient", s.base + "/files/p1", 2)])
    s.on(
      "GET", "/status/1",
      sequence: [
        .outcome(202, code: "informational", diagnostics: "still working", [("X-Progress", "40% complete"), ("Retry-After", "1")]),
        .status(202, [("X-Progress", "80% complete")]),
        .json(200, manifest, [("Expires", "Wed, 21 Oct 2015 07:28:00 GMT")]),
      ])
    let m = try await client.waitForManifest(statusURL: s.base + "/status/1")
    #expect(m.output.count == 1 && m.expires == "Wed, 21 Oct 2015 07:28:00 GMT")
    #expect(m.transactionTime == "2024-05-01T10:00:00.123+00:00")
    #expect(s.requests(path: "/status/1").allSatisfy { $0.header("Accept") == "application/json" && $0.header("Authorization") == "Bearer secret-token" })
    let progress = events.all.compactMap { e -> String? in
      if case .statusProgress(let x, _, _) = e { return x } else { return nil }
    }
    #expect(progress == ["40% complete", "80% complete"])
    #expect(events.all.contains(.statusComplete(transactionTime: "2024-05-01T10:00:00.123+00:00")))
  }

  @Test func c34_transientErrorsAreRetriedFatalOnesStop() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let client = makeClient(s)
    s.on(
      "GET", "/status/t",
      sequence: [.outcome(500, code: "transient", diagnostics: "try again"), .status(503), .json(200, manifestJSON(s.base, output: []))])
    _ = try await client.waitForManifest(statusURL: s.base + "/status/t")
    #expect(s.requests(path: "/status/t").count == 3)

    s.on("GET", "/status/f", respond: .outcome(500, code: "processing", diagnostics: "export crashed"))
    do {
      _ = try await client.waitForManifest(statusURL: s.base + "/status/f")
      Issue.record("expected failure")
    } catch let e as BulkError {
      #expect(e.issueCodes == ["processing"] && e.description.contains("export crashed"))
    }
    #expect(s.requests(path: "/status/f").count == 1)
  }

  @Test func c35_404MeansTheJobIsGone() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let client = makeClient(s)
    s.on("GET", "/status/g", sequence: [.status(202), .outcome(404, code: "not-found", diagnostics: "no such job")])
    do {
      _ = try await client.waitForManifest(statusURL: s.base + "/status/g")
      Issue.record("expected failure")
    } catch let e as BulkError {
      #expect(e.isJobGone)
      #expect(e.description.contains("run the export again"))
    }
    #expect(s.requests(path: "/status/g").count == 2)
  }

  @Test func c32_status429RaisesTheInterval() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let events = EventLog()
    let client = makeClient(s, events: events)
    s.on(
      "GET", "/status/r",
      sequence: [.status(429, [("Retry-After", "30")]), .status(202), .status(202), .json(200, manifestJSON(s.base, output: []))])
    _ = try await client.waitForManifest(statusURL: s.base + "/status/r")
    let waits = events.all.compactMap { e -> Duration? in
      if case .statusProgress(_, _, let d) = e { return d } else { return nil }
    }
    // 429 asked for 30 s (clamped to 50 ms); later polls without Retry-After stay at ≥ 50 ms.
    #expect(waits.count == 2 && waits.allSatisfy { $0 >= .milliseconds(50) })
  }

  @Test func c31_retryAfterAndTheJobTimeoutRunOnTheInjectedClock() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let clock = TestClock()
    // The default policy (Retry-After clamped to 1 s … 15 min, a 24 h job timeout), in virtual time.
    let client = BulkClient(
      endpoint: BulkEndpoint(baseURL: s.base + "/fhir", auth: StaticTokenProvider("secret-token")), clock: clock)
    s.on("GET", "/status/w", sequence: [.status(202, [("Retry-After", "120")]), .json(200, manifestJSON(s.base, output: []))])
    let waiting = Task { try await client.waitForManifest(statusURL: s.base + "/status/w") }
    await untilAsleep(clock)
    #expect(s.requests(path: "/status/w").count == 1)
    await clock.advance(by: .milliseconds(119_900))
    #expect(s.requests(path: "/status/w").count == 1, "polled before Retry-After")
    await clock.advance(by: .milliseconds(200))
    _ = try await waiting.value
    #expect(s.requests(path: "/status/w").count == 2)

    // A job that never finishes: polls every 15 min (the clamp) until the 1 h timeout.
    s.on("GET", "/status/never", respond: .status(202, [("Retry-After", "3600")]))
    var policy = PollPolicy()
    policy.jobTimeout = .seconds(3600)
    let p = policy
    do {
      _ = try await advancingWhileAsleep(clock, by: .seconds(15 * 60)) {
        try await client.waitForManifest(statusURL: s.base + "/status/never", policy: p)
      }
      Issue.record("expected the job timeout")
    } catch let e as BulkError {
      guard case .jobTimeout(let seconds) = e else { throw e }
      #expect(seconds == 3600)
    }
    // Polls at 0, 15, 30, 45 and 60 min; at 75 min the hour has passed.
    #expect(s.requests(path: "/status/never").count == 5)
  }

  @Test func c64_pagedManifestsAreFollowedAndMerged() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let client = makeClient(s)
    s.on("GET", "/status/p", respond: .json(200, manifestJSON(s.base, output: [("Patient", s.base + "/f/1", nil)], next: s.base + "/status/p?page=2")))
    s.on("GET", "/status/p") { r, _ in
      switch r.query {
      case "page=2": return .json(200, manifestJSON(s.base, output: [("Observation", s.base + "/f/2", nil)], next: s.base + "/status/p?page=3"))
      case "page=3": return .json(200, manifestJSON(s.base, output: [("Observation", s.base + "/f/3", nil)], error: [("OperationOutcome", s.base + "/f/e")]))
      default: return .json(200, manifestJSON(s.base, output: [("Patient", s.base + "/f/1", nil)], next: s.base + "/status/p?page=2"))
      }
    }
    let m = try await client.waitForManifest(statusURL: s.base + "/status/p")
    #expect(m.output.map(\.url) == [s.base + "/f/1", s.base + "/f/2", s.base + "/f/3"])
    #expect(m.error.count == 1 && m.pages == 3 && m.rawPages.count == 3)
    #expect(try FileNaming.plan(m).map(\.relativePath) == ["Patient.1.ndjson", "Observation.1.ndjson", "Observation.2.ndjson", "error/OperationOutcome.1.ndjson"])
  }

  @Test func c41_mismatchedRequestWarns() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let events = EventLog()
    let client = makeClient(s, events: events)
    s.on("GET", "/status/x", respond: .json(200, manifestJSON(s.base, output: [])))
    _ = try await client.waitForManifest(statusURL: s.base + "/status/x", expectedRequest: s.base + "/fhir/Group/other/$export")
    #expect(events.warnings.count == 1)
  }

  @Test func c36_deleteSucceedsOrWarns() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let events = EventLog()
    let client = makeClient(s, events: events)
    s.on("DELETE", "/status/d", respond: .status(202))
    try await client.delete(statusURL: s.base + "/status/d")
    #expect(s.requests("DELETE").count == 1)
    #expect(s.requests("DELETE").first?.header("Authorization") == "Bearer secret-token")
    s.on("DELETE", "/status/d", respond: .status(405))
    try await client.delete(statusURL: s.base + "/status/d")
    #expect(events.warnings.count == 1)
    s.on("DELETE", "/status/d", respond: .outcome(500, code: "exception", diagnostics: "db down"))
    await #expect(throws: BulkError.self) { try await client.delete(statusURL: s.base + "/status/d") }
  }

  @Test func capabilityCheckRefusesBeforeKickoff() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let client = makeClient(s)
    s.on(
      "GET", "/fhir/metadata",
      respond: .json(200, #"{"resourceType":"CapabilityStatement","fhirVersion":"4.0.1","rest":[{"mode":"server","resource":[{"type":"Patient","operation":[{"name":"export","definition":"http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"}]}]}]}"#))
    do {
      _ = try await client.checkSupport(level: .group("g"), parameters: ExportParameters())
      Issue.record("expected refusal")
    } catch let e as BulkError {
      #expect(e.description.contains("group-level $export"))
    }
    let ok = try await client.checkSupport(level: .patient, parameters: ExportParameters(types: ["Patient"]))
    #expect(ok.fhirVersion == "4.0.1")
    #expect(s.requests("GET", path: "/fhir/metadata").first?.header("Accept") == "application/fhir+json")
  }
}
