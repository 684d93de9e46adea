import Foundation
import Testing

@testable import FHIRBulk

/// Validate before trusting (issue 11 item 2): manifests, Group reads, status answers.
@Suite struct ValidationTests {
  @Test func c38_manifestWithoutOutputRequestOrTransactionTimeIsRefused() throws {
    let noOutput = #"{"transactionTime":"2024-05-01T10:00:00Z","request":"r","requiresAccessToken":true,"error":[]}"#
    do {
      _ = try Manifest.parse(Data(noOutput.utf8))
      Issue.record("expected refusal")
    } catch let e as BulkError {
      #expect(e.description.contains("no output array"))
      #expect(e.failureClass == .data && !e.isResumable)
    }
    let empty = #"{"transactionTime":"2024-05-01T10:00:00Z","request":"r","requiresAccessToken":true,"output":[],"error":[]}"#
    #expect(try Manifest.parse(Data(empty.utf8)).output.isEmpty)
    let noRequest = #"{"transactionTime":"2024-05-01T10:00:00Z","requiresAccessToken":true,"output":[],"error":[]}"#
    #expect(throws: BulkError.self) { try Manifest.parse(Data(noRequest.utf8)) }
    let noTime = #"{"request":"r","requiresAccessToken":true,"output":[],"error":[]}"#
    do {
      _ = try Manifest.parse(Data(noTime.utf8))
      Issue.record("expected refusal")
    } catch let e as BulkError { #expect(e.description.contains("no transactionTime")) }
    let badTime = #"{"transactionTime":"yesterday","request":"r","requiresAccessToken":true,"output":[],"error":[]}"#
    #expect(throws: BulkError.self) { try Manifest.parse(Data(badTime.utf8)) }
  }

  @Test func c51_transactionTimeInTheFutureIsFlaggedAndWarned() async throws {
    let now = Date()
    let f = ISO8601DateFormatter()
    let ahead = f.string(from: now.addingTimeInterval(3600))
    let close = f.string(from: now.addingTimeInterval(30))
    let m = try Manifest.parse(
      Data(#"{"transactionTime":"\#(ahead)","request":"r","requiresAccessToken":false,"output":[],"error":[]}"#.utf8))
    #expect(m.transactionTimeIsInFuture(now: now))
    #expect(!m.transactionTimeIsInFuture(now: now, skew: 7200))
    let near = try Manifest.parse(
      Data(#"{"transactionTime":"\#(close)","request":"r","requiresAccessToken":false,"output":[],"error":[]}"#.utf8))
    #expect(!near.transactionTimeIsInFuture(now: now))

    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let events = EventLog()
    s.on("GET", "/status/f", respond: .json(200, manifestJSON(s.base, output: [], transactionTime: ahead)))
    _ = try await makeClient(s, events: events).waitForManifest(statusURL: s.base + "/status/f")
    #expect(events.warnings.filter { $0.contains("in the future") }.count == 1)
  }

  @Test func c60_groupWithoutMemberIsUnknownNotEmpty() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let client = makeClient(s)
    s.on("GET", "/fhir/Group/big", respond: .json(200, #"{"resourceType":"Group","id":"big","type":"person","actual":true,"quantity":250000}"#))
    s.on("GET", "/fhir/Group/empty", respond: .json(200, #"{"resourceType":"Group","id":"empty","type":"person","actual":true,"member":[]}"#))
    s.on("GET", "/fhir/Group/liar", respond: .json(200, #"{"resourceType":"Group","id":"liar","quantity":3,"member":[]}"#))
    s.on(
      "GET", "/fhir/Group/g",
      respond: .json(
        200,
        #"{"resourceType":"Group","id":"g","member":[{"entity":{"reference":"Patient/1"}},{"entity":{"reference":"Patient/2"},"inactive":true},{"entity":{"reference":"https://x/fhir/Patient/3"}}]}"#
      ))
    guard case .unknown(let reason) = try await client.groupMembers(groupID: "big") else {
      Issue.record("expected unknown")
      return
    }
    #expect(reason.contains("without its member list"))
    #expect(try await client.groupMembers(groupID: "empty") == .known([]))
    #expect(try await client.groupMembers(groupID: "liar").ids == nil)
    #expect(try await client.groupMembers(groupID: "g") == .known(["1", "3"]))
    #expect(s.requests(path: "/fhir/Group/g").first?.header("Authorization") == "Bearer secret-token")
  }

  /// The Group body is read in one pass into its member references only (bounded memory for large Groups): the
  /// same answers as a full JSON parse — escapes decoded, unknown elements skipped, bad JSON and a `member` that is
  /// not an array of objects refused.
  @Test func c59_groupBodyIsReadIntoMemberReferencesOnly() throws {
    func read(_ text: String) -> GroupDocument? { GroupDocument(Data(text.utf8)) }
    let g = try #require(
      read(
        "\u{FEFF}"
          + #"""
          { "meta": {"tag": [{"code": "x", "n": -1.5e3}, null, true]}, "resourceType": "Group", "quantity": 3.0,
            "member": [ {"entity": {"reference": "Patient\/a\u00e9\ud83d\ude00", "display": "x \"y\""}, "period": {}},
                        {"inactive": true, "entity": {"reference": "Patient/b"}},
                        {"inactive": "yes", "entity": {"display": "no reference"}},
                        {"entity": "not an object"} ] }
          """#))
    #expect(g.resourceType == "Group" && g.quantity == 3 && g.hasMember)
    #expect(
      g.member == [
        GroupMember(reference: "Patient/aé😀"), GroupMember(reference: "Patient/b", inactive: true), GroupMember(),
        GroupMember(),
      ])
    #expect(read(#"{"resourceType":"Group","member":[{"entity":{}}, 3]}"#)?.member == nil)
    #expect(read(#"{"resourceType":"Group","member":[{"entity":{}}, 3]}"#)?.hasMember == true)
    #expect(read(#"{"resourceType":"Group","member":{"entity":{}}}"#)?.member == nil)
    #expect(read(#"{"resourceType":"Group","quantity":"many"}"#)?.quantity == nil)
    let bad = [
      #"{"resourceType":"Group","member":[}"#, #"{"resourceType":"Group"} x"#, #"["Group"]"#, #"{"a":01}"#,
      #"{"a":"\x"}"#, #"{"a":tru}"#, "{\"a\":\"\u{01}\"}", #"{"a":"\ud800"}"#, "",
    ]
    for text in bad { #expect(read(text) == nil, "\(text)") }
  }

  /// A Group of any size is read in bounded memory (C59, issue 12 item 2): the body is streamed to a spool file and
  /// the member ids are handed over in batches, in the Group's order — gzip decoded, a body beyond the 64 MiB that
  /// other small responses may have, the spool file removed afterwards. A `member` that turns out not to be an array
  /// of objects is refused even after batches went out (the caller then treats membership as unknown).
  @Test func c59_aGroupOfAnySizeIsStreamedInBatches() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let client = makeClient(s)
    let ids = (0..<10_000).map { "p\($0)" }
    let members = ids.enumerated().map { i, id in
      #"{"entity":{"reference":"Patient/\#(id)"}\#(i % 1000 == 7 ? #","inactive":true"# : "")}"#
    }.joined(separator: ",")
    let active = ids.enumerated().filter { $0.offset % 1000 != 7 }.map(\.element)
    let small = #"{"resourceType":"Group","member":[\#(members)]}"#
    s.on(
      "GET", "/fhir/Group/zipped",
      respond: MockResponse(
        status: 200, headers: [("Content-Type", "application/fhir+json"), ("Content-Encoding", "gzip")],
        body: .data(try gzip(Data(small.utf8)))))
    // 65 MiB of narrative (not compressible) before the members.
    let chunk = (0..<1024).map { i in String(UnicodeScalar(UInt8(97 + (i * 7919) % 26))) }.joined()
    let big = #"{"resourceType":"Group","text":{"div":"\#(String(repeating: chunk, count: 65 << 10))"},"member":[\#(members)]}"#
    s.on("GET", "/fhir/Group/big", respond: .json(200, big))
    s.on("GET", "/fhir/Group/mixed", respond: .json(200, #"{"resourceType":"Group","member":[\#(members),3]}"#))
    let spool = NSTemporaryDirectory() + "cohort-group-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: spool) }

    for group in ["zipped", "big"] {
      let batches = Locked<[[String]]>([])
      let read = try await client.groupMembers(groupID: group, spoolFile: spool + "/g.json", batchSize: 4000) { batch in
        batches.withLock { $0.append(batch) }
      }
      #expect(read == .known(active.count), "\(group)")
      #expect(batches.current.map(\.count) == [4000, 4000, active.count - 8000], "\(group)")
      #expect(batches.current.flatMap { $0 } == active, "\(group)")
      #expect(try FileManager.default.contentsOfDirectory(atPath: spool).isEmpty, "the spool file is removed")
    }
    let handed = Locked(0)
    do {
      _ = try await client.groupMembers(groupID: "mixed", spoolFile: spool + "/g.json", batchSize: 4000) { batch in
        handed.withLock { $0 += batch.count }
      }
      Issue.record("expected a refusal")
    } catch let e as BulkError {
      #expect(e.description.contains("not an array"))
    }
    #expect(handed.current == 8000, "full batches went out before the bad element; the rest did not")
    #expect(try FileManager.default.contentsOfDirectory(atPath: spool).isEmpty)
  }

  /// The Group's reader stops between batches once its task is cancelled (an export that fails or is interrupted
  /// while its Group is read stops writing members).
  @Test func c59_aGroupReadStopsBetweenBatchesWhenCancelled() throws {
    let path = NSTemporaryDirectory() + "cohort-group-" + UUID().uuidString + ".json"
    defer { unlink(path) }
    let members = (0..<100).map { #"{"entity":{"reference":"Patient/p\#($0)"}}"# }.joined(separator: ",")
    try Data(#"{"resourceType":"Group","member":[\#(members)]}"#.utf8).write(to: URL(fileURLWithPath: path))
    let stop = Locked(false)
    var handed = 0
    #expect(throws: CancellationError.self) {
      _ = try GroupScan.members(path: path, batchSize: 10, stop: stop) { batch in
        handed += batch.count
        if handed == 30 { stop.withLock { $0 = true } }
      }
    }
    #expect(handed == 30)
    let whole = try GroupScan.members(path: path, batchSize: 10, stop: Locked(false)) { _ in }
    #expect(whole.ids == 100 && whole.document.memberCount == 100 && whole.document.memberIsArrayOfObjects)
  }

  @Test func aSingleNonJSON200FromTheStatusURLIsRetried() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let events = EventLog()
    let client = makeClient(s, events: events)
    s.on(
      "GET", "/status/h",
      sequence: [.text(200, "<html>maintenance</html>", contentType: "text/html"), .json(200, manifestJSON(s.base, output: []))])
    _ = try await client.waitForManifest(statusURL: s.base + "/status/h")
    #expect(s.requests(path: "/status/h").count == 2)
    #expect(events.retries.count == 1)

    s.on("GET", "/status/always", respond: .text(200, "not json"))
    do {
      _ = try await client.waitForManifest(statusURL: s.base + "/status/always")
      Issue.record("expected failure")
    } catch let e as BulkError {
      #expect(e.description.contains("instead of a JSON manifest"))
      #expect(e.failureClass == .data)
    }
    // Bounded: the first poll plus maxTransientRetries (3 in the fast policy).
    #expect(s.requests(path: "/status/always").count == 4)
  }

  @Test func kickoffWarningsAreSurfacedOnce() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let events = EventLog()
    let client = makeClient(s, events: events)
    let body = #"{"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"processing","diagnostics":"_typeFilter on Condition ignored"},{"severity":"information","code":"informational","diagnostics":"queued"}]}"#
    s.on("GET", "/fhir/$export", respond: .json(202, body, [("Content-Location", s.base + "/st/1")]))
    _ = try await client.kickoff(level: .system, parameters: ExportParameters())
    _ = try await client.kickoff(level: .system, parameters: ExportParameters())
    #expect(events.warnings.filter { $0.contains("_typeFilter on Condition ignored") }.count == 1)
    // An information issue is shown once too, but not as a warning ("export job accepted" is not a problem).
    #expect(events.information.filter { $0.contains("queued") }.count == 1)
    #expect(!events.warnings.contains { $0.contains("queued") })
  }
}

/// Terminal safety (issue 11 item 8): server text is escaped in errors and events.
@Suite struct TerminalSafetyTests {
  @Test func escapesControlCharactersButKeepsTabAndUnicode() {
    #expect(TerminalText.escape("ok\u{1B}[2J\r\nfake committed\u{7}") == #"ok\u{1B}[2J\u{0D}\u{0A}fake committed\u{07}"#)
    #expect(TerminalText.escape("a\tb é ✓") == "a\tb é ✓")
    #expect(TerminalText.escape("\u{9B}31m") == #"\u{9B}31m"#)
    #expect(TerminalText.escape("\u{7F}") == #"\u{7F}"#)
  }

  @Test func serverTextInErrorsAndEventsIsEscaped() async throws {
    let s = try await MockServer.start()
    defer { Task { await s.stop() } }
    let events = EventLog()
    let client = makeClient(s, events: events)
    s.on("GET", "/fhir/$export", respond: .outcome(400, code: "invalid", diagnostics: "bad \\u001b[31mred\\u001b[0m"))
    do {
      _ = try await client.kickoff(level: .system, parameters: ExportParameters())
      Issue.record("expected failure")
    } catch let e as BulkError {
      #expect(!e.description.contains("\u{1B}"))
      #expect(e.description.contains(#"\u{1B}[31mred"#))
      guard case .refused(let status, let codes, let diagnostics) = e.failureClass else {
        Issue.record("expected refused")
        return
      }
      #expect(status == 400 && codes == ["invalid"] && diagnostics.allSatisfy { !$0.contains("\u{1B}") })
    }
    let warn = #"{"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"processing","diagnostics":"\u001b]0;pwned\u0007"}]}"#
    s.on("GET", "/fhir/Patient/$export", respond: .json(202, warn, [("Content-Location", s.base + "/st/2")]))
    _ = try? await client.kickoff(level: .patient, parameters: ExportParameters())
    #expect(!String(describing: events.all).contains("\u{1B}"))
    #expect(events.warnings.contains { $0.contains(#"\u{1B}]0;pwned\u{07}"#) })
  }
}

/// Failure classes (issue 11 item 5).
@Suite struct FailureClassTests {
  @Test func classesAndResumability() {
    #expect(BulkError.invalidParameter(name: "_type", value: "X", reason: "r").failureClass == .usage)
    #expect(BulkError.network(operation: .status, url: "https://h/x", message: "m").isResumable)
    #expect(BulkError.io(path: "/p", message: "No space left on device").failureClass == .localIO)
    #expect(BulkError.io(path: "/p", message: "full").isResumable)
    #expect(BulkError.invalidFile(url: "https://h/f", type: "Patient", reason: "line 3").failureClass == .data)
    #expect(!BulkError.dataFault(file: "deleted/Bundle.1.ndjson", line: 2, reason: "r").isResumable)
    #expect(BulkError.server(operation: .download, status: 503, outcome: nil, body: nil).failureClass == .network)
    let refused = BulkError.server(
      operation: .kickoff, status: 403,
      outcome: OperationOutcome(issue: [.init(severity: "error", code: "forbidden", diagnostics: "no access")]), body: nil)
    #expect(refused.failureClass == .refused(status: 403, codes: ["forbidden"], diagnostics: ["no access"]))
    #expect(!refused.isResumable)
    #expect(BulkError.limitExceeded(url: "https://h/f", limit: .compressionRatio(200)).failureClass == .data)
    #expect(BulkError.limitExceeded(url: "https://h/f", limit: .stall(seconds: 300)).failureClass == .network)
    #expect(BulkError.tokenOriginRefused(operation: .status, host: "h2", server: "h1").failureClass == .policy)
    let mixed = BulkError.downloadsFailed(
      failed: 2, total: 5, first: .invalidFile(url: "https://h/f", type: "Patient", reason: "line 1 has no id"))
    #expect(mixed.failureClass == .data && !mixed.isResumable)
    #expect(FailureClass.of(CancellationError()) == .cancelled)
    #expect(FailureClass.of(SMARTError.network(url: "https://a/t", message: "down")) == .network)
  }

  @Test func networkErrorsNameTheHostNotTheSignedURL() {
    let e = BulkError.network(operation: .download, url: "https://bucket.example.org/o?X-Amz-Signature=abc", message: "connection refused")
    #expect(e.description.contains("bucket.example.org") && !e.description.contains("Signature"))
  }
}
