import CohortTestSupport
import Foundation
import Testing

@testable import CohortShell

/// End to end: the built binary replays every `Notebooks/*.cohort` against the built-in server (fixed
/// seeds, pinned local clock) and the transcript must equal the checked-in one in `Notebooks/transcripts/`.
/// Re-record after an intended change with `COHORT_RECORD_TRANSCRIPTS=1 make test`.
@Suite(.serialized) struct NotebookTests {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
  /// `Notebooks/*.cohort` and `Notebooks/*/*.cohort` (e.g. `views/views.cohort`).
  static let notebooks: [String] = {
    let dir = root.appendingPathComponent("Notebooks").path
    let fm = FileManager.default
    var out: [String] = []
    for entry in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] {
      if entry.hasSuffix(".cohort") { out.append(entry) }
      var isDir: ObjCBool = false
      if entry != "transcripts", fm.fileExists(atPath: dir + "/" + entry, isDirectory: &isDir), isDir.boolValue {
        out += ((try? fm.contentsOfDirectory(atPath: dir + "/" + entry)) ?? []).filter { $0.hasSuffix(".cohort") }
          .map { entry + "/" + $0 }
      }
    }
    return out.sorted()
  }()

  /// Ports differ from run to run; nothing else may.
  static func normalize(_ text: String) -> String {
    text.replacingOccurrences(of: #"127\.0\.0\.1:[0-9]+"#, with: "127.0.0.1:PORT", options: .regularExpression)
  }

  /// stderr holds the messages users read (notes, warnings, errors, the export's milestones); what depends on
  /// timing is normalised: durations, the order in which parallel downloads finish, and the progress and
  /// "waiting" lines that appear only when something takes long.
  static func normalizeStderr(_ text: String, dir: String) -> String {
    var lines: [String] = []
    var downloads: [String] = []
    func flush() {
      lines += downloads.sorted()
      downloads = []
    }
    let timing = #"[0-9]+(\.[0-9]+)? (ms|s)\b"#
    let text = text.replacingOccurrences(of: dir, with: "$TMP").replacingOccurrences(of: root.path + "/", with: "")
    for raw in normalize(text).split(separator: "\n") {
      var line = String(raw)
      if line.hasPrefix("waiting for the server") || line.hasPrefix("retrying in") || line.contains(" · ") { continue }
      line = line.replacingOccurrences(of: timing, with: "<t>", options: .regularExpression)
      if line.hasPrefix("downloaded ") {
        downloads.append(line.replacingOccurrences(of: #"\((joiners )?[0-9]+/"#, with: "($1…/", options: .regularExpression))
        continue
      }
      flush()
      lines.append(line)
    }
    flush()
    return lines.map { $0 + "\n" }.joined()
  }

  @Test(arguments: notebooks)
  func transcriptMatches(_ notebook: String) throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let result = try Binary.run(
      ["--workspace", dir + "/Cohorts", "--format", "table", "--echo", "run", Self.root.appendingPathComponent("Notebooks/" + notebook).path],
      cwd: dir, environment: ["COHORT_NOW": "2026-01-01T00:00:00Z", "NO_COLOR": "1"])
    // stdout, then stderr (normalised), then the exit status: error messages and warnings are golden too.
    let transcript = Self.normalize(result.stdout) + "# stderr\n" + Self.normalizeStderr(result.stderr, dir: dir)
      + "# exit \(result.status)\n"
    let name = (notebook as NSString).lastPathComponent
    let goldenPath = Self.root.appendingPathComponent("Notebooks/transcripts/" + name.replacingOccurrences(of: ".cohort", with: ".out")).path
    if ProcessInfo.processInfo.environment["COHORT_RECORD_TRANSCRIPTS"] != nil {
      try transcript.write(toFile: goldenPath, atomically: true, encoding: .utf8)
      return
    }
    let golden = try String(contentsOfFile: goldenPath, encoding: .utf8)
    // errors.cohort fails on purpose (its golden ends in "# exit 1"); every other notebook must succeed.
    #expect(result.status == (name == "errors.cohort" ? 1 : 0), "\(notebook):\n\(result.stderr)")
    #expect(transcript == golden, "transcript of \(notebook) differs; stderr:\n\(result.stderr)")
  }
}

/// Run records, `verify`, `replay --frozen` and `expect` (replayable research).
@Suite(.serialized) struct RunRecordTests {
  static let secret = "tok-\(UUID().uuidString)"

  func recordedRun() throws -> (dir: String, out: String) {
    let dir = try temporaryDirectory()
    let notebook = """
      # a notebook with a bearer-protected server and assertions
      serve --background --seed 5 --patients 25 --auth bearer --bearer-token \(Self.secret)
      server add s $server_url --auth bearer --token-env SECRET_TOKEN
      cohort add dm --server s --group diabetes-patients
      export dm
      expect count dm Patient >= 1
      expect snapshots dm == 1
      advance --days 4
      export dm --incremental
      expect snapshots dm == 2
      summary dm
      diff dm
      show dm Patient/pat-1 --versions
      history dm
      """
    try notebook.write(toFile: dir + "/study.cohort", atomically: true, encoding: .utf8)
    let r = try Binary.run(
      ["--workspace", dir + "/ws", "--format", "table", "run", "study.cohort", "--record"], cwd: dir,
      environment: ["SECRET_TOKEN": Self.secret, "COHORT_NOW": "2026-01-01T00:00:00Z"])
    #expect(r.status == 0, "recorded run failed: \(r.stderr)")
    return (dir, r.stdout)
  }

  @Test func frozenReplayIsByteIdenticalAndRecordsHoldNoSecrets() throws {
    let (dir, out) = try recordedRun()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let recordText = try String(contentsOfFile: dir + "/study.run.json", encoding: .utf8)
    #expect(!recordText.contains(Self.secret), "the token never reaches the record")
    #expect(!recordText.contains("pat-1"), "patient identifiers never reach the record")
    #expect(recordText.contains("\"transactionTime\""))
    #expect(recordText.contains("\"sha256\""))
    #expect(!out.contains(Self.secret))

    let frozen = try Binary.run(["--workspace", dir + "/ws", "--format", "table", "replay", "study.cohort", "--frozen"], cwd: dir)
    #expect(frozen.status == 0, "\(frozen.stderr)")
    #expect(frozen.stdout == out)

    let verified = try Binary.run(["--workspace", dir + "/ws", "verify", "study.cohort"], cwd: dir)
    #expect(verified.status == 0)
    #expect(verified.stdout.contains("present and unchanged"))
  }

  @Test func verifyNamesModifiedMissingAndExtraFiles() throws {
    let (dir, _) = try recordedRun()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let first = dir + "/ws/dm/0001"
    let handle = try #require(FileHandle(forWritingAtPath: first + "/Patient.1.ndjson"))
    handle.seekToEndOfFile()
    handle.write(Data("{}\n".utf8))
    try handle.close()
    try FileManager.default.removeItem(atPath: first + "/Condition.1.ndjson")
    try "{}\n".write(toFile: first + "/Observation.7.ndjson", atomically: true, encoding: .utf8)
    let r = try Binary.run(["--workspace", dir + "/ws", "--format", "csv", "verify", "study.cohort"], cwd: dir)
    #expect(r.status == ExitStatus.failed)
    #expect(r.stdout.contains("modified,dm/0001/Patient.1.ndjson"))
    #expect(r.stdout.contains("missing,dm/0001/Condition.1.ndjson"))
    #expect(r.stdout.contains("extra,dm/0001/Observation.7.ndjson"))
    #expect(r.stderr.contains("3 difference(s)"))
  }

  @Test func failedExpectationStopsTheScriptAtItsLine() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try """
      serve --background --seed 5 --patients 10
      server add s $server_url
      cohort add dm --server s --group all-patients
      export dm
      expect count dm Patient == 999
      summary dm
      """.write(toFile: dir + "/x.cohort", atomically: true, encoding: .utf8)
    let r = try Binary.run(["--workspace", dir + "/ws", "run", "x.cohort"], cwd: dir)
    #expect(r.status == ExitStatus.scriptStopped)
    #expect(r.stderr.contains("x.cohort:5: error: expectation failed: Patient in dm at #1 is 10, expected == 999"))
  }
}
