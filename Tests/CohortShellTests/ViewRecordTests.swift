import CohortTestSupport
import Foundation
import Testing

@testable import CohortKit
@testable import CohortShell

/// Views in notebooks (issue 14 §4): `expect rows`, run records holding each view's sha256 and only the hash of
/// `view run`/`sql` output, and `replay --frozen` reproducing that output byte for byte.
@MainActor
@Suite(.serialized) struct ViewRecordTests {
  static let view = """
    {"resourceType": "ViewDefinition", "name": "pats", "resource": "Patient", "status": "active",
     "select": [{"column": [{"name": "id", "path": "getResourceKey()"}, {"name": "gender", "path": "gender"}]}]}
    """

  static func hex(_ data: Data) -> String { sha256Hex(data) }

  /// Splits `--echo` output into each command's output, keyed by the command text.
  static func perCommand(_ echoed: String) -> [(String, String)] {
    var out: [(String, String)] = []
    var lines = echoed.split(separator: "\n", omittingEmptySubsequences: false)
    if lines.last == "" { lines.removeLast() }  // after the final newline
    for line in lines {
      if line.hasPrefix("> ") {
        out.append((String(line.dropFirst(2)), ""))
      } else if !out.isEmpty {
        out[out.count - 1].1 += line + "\n"
      }
    }
    return out
  }

  @Test func recordsHoldViewHashesAndFrozenReplayReproducesViewAndSQLOutput() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try Self.view.write(toFile: dir + "/pats.json", atomically: true, encoding: .utf8)
    try """
      serve --background --seed 5 --patients 12
      server add s $server_url
      cohort add dm --server s --group all-patients
      export dm
      view save pats pats.json
      view run pats.json dm --format csv
      view materialize pats dm
      sql dm 'SELECT gender, count(*) AS n FROM pats GROUP BY gender ORDER BY gender'
      expect rows pats dm == 12
      expect rows pats.json dm >= 1
      advance --days 3
      export dm --incremental
      view run pats dm --at 1 --format ndjson
      view run pats dm --format json
      sql dm 'SELECT count(*) AS n FROM pats'
      """.write(toFile: dir + "/study.cohort", atomically: true, encoding: .utf8)
    let env = ["COHORT_NOW": "2026-01-01T00:00:00Z"]
    let recorded = try Binary.run(
      ["--workspace", dir + "/ws", "--format", "table", "--echo", "run", "study.cohort", "--record"], cwd: dir,
      environment: env)
    #expect(recorded.status == 0, "recorded run failed: \(recorded.stderr)")

    let record = try RunRecord.load(path: dir + "/study.run.json")
    let viewHash = Self.hex(try Data(contentsOf: URL(fileURLWithPath: dir + "/pats.json")))
    let viewCommands = record.commands.filter { ["view", "expect"].contains($0.words.first ?? "") }
    #expect(viewCommands.count == 7)
    for command in viewCommands {
      #expect(command.viewSHA256 == viewHash, "`\(command.text)` records the view file's sha256")
    }
    #expect(record.commands.first { $0.words.starts(with: ["view", "save"]) }?.view == "pats.json")
    let analysis = record.commands.filter { $0.words.first == "sql" || $0.words.starts(with: ["view", "run"]) }
    #expect(analysis.count == 5)
    for command in analysis {
      #expect(command.output == nil, "only the hash of `\(command.text)` output is kept (it names patients)")
    }
    #expect(record.commands.first { $0.words.first == "export" }?.viewSHA256 == nil)
    let recordText = try String(contentsOfFile: dir + "/study.run.json", encoding: .utf8)
    #expect(!recordText.contains("Patient/pat-"), "row output (patient keys) never reaches the record")

    let frozen = try Binary.run(
      ["--workspace", dir + "/ws", "--format", "table", "--echo", "replay", "study.cohort", "--frozen"], cwd: dir,
      environment: env)
    #expect(frozen.status == 0, "\(frozen.stderr)")
    #expect(frozen.stdout == recorded.stdout, "frozen replay prints exactly what the recorded run printed")
    // Each view/sql command's replayed output has the hash the record holds.
    let replayed = Self.perCommand(frozen.stdout)
    #expect(replayed.count == record.commands.count)
    for (command, (text, output)) in zip(record.commands, replayed) where analysis.contains(command) {
      #expect(text == command.text)
      #expect(Self.hex(Data(output.utf8)) == command.outputSHA256, "`\(text)` replays byte for byte")
      #expect(!output.isEmpty)
    }
  }

  /// A reviewer replaying a study's data pull must hear when a view file the notebook uses is no longer the one the
  /// run was recorded with: each such line is named with both hashes, the replay still runs (so the new rows can be
  /// compared), and it exits non-zero like any replay that differs from its record.
  @Test func frozenReplayNamesAViewFileChangedSinceTheRecordAndFails() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try Self.view.write(toFile: dir + "/pats.json", atomically: true, encoding: .utf8)
    try """
      serve --background --seed 5 --patients 12
      server add s $server_url
      cohort add dm --server s --group all-patients
      export dm
      view save pats pats.json
      view run pats.json dm --format csv
      view run pats dm --format csv
      expect rows pats dm == 12
      summary dm
      """.write(toFile: dir + "/study.cohort", atomically: true, encoding: .utf8)
    let env = ["COHORT_NOW": "2026-01-01T00:00:00Z"]
    let recorded = try Binary.run(["--workspace", dir + "/ws", "run", "study.cohort", "--record"], cwd: dir, environment: env)
    #expect(recorded.status == 0, "recorded run failed: \(recorded.stderr)")
    let old = Self.hex(try Data(contentsOf: URL(fileURLWithPath: dir + "/pats.json")))

    // Unchanged: the frozen replay is clean.
    let clean = try Binary.run(["--workspace", dir + "/ws", "replay", "study.cohort", "--frozen"], cwd: dir, environment: env)
    #expect(clean.status == ExitStatus.ok, "\(clean.stderr)")
    #expect(!clean.stderr.contains("changed since the run was recorded"), "\(clean.stderr)")

    // The column is renamed: same rows' values, a different view.
    try Self.view.replacingOccurrences(of: "\"name\": \"gender\"", with: "\"name\": \"sex\"")
      .write(toFile: dir + "/pats.json", atomically: true, encoding: .utf8)
    let new = Self.hex(try Data(contentsOf: URL(fileURLWithPath: dir + "/pats.json")))
    #expect(new != old)
    let frozen = try Binary.run(["--workspace", dir + "/ws", "replay", "study.cohort", "--frozen"], cwd: dir, environment: env)
    #expect(frozen.status == ExitStatus.failed, "a frozen replay with a changed view fails: \(frozen.stderr)")
    let says = "changed since the run was recorded (sha256 \(new.prefix(12))…, recorded \(old.prefix(12))…): "
      + "the rows reproduced from it come from a different view than the recorded run's"
    for line in [5, 6] {
      #expect(frozen.stderr.contains("study.cohort:\(line): warning: view file pats.json " + says), "line \(line):\n\(frozen.stderr)")
    }
    for line in [7, 8] {  // the saved copy was re-saved from the changed file at line 5
      #expect(frozen.stderr.contains("study.cohort:\(line): warning: view file "), "line \(line):\n\(frozen.stderr)")
      #expect(frozen.stderr.contains("/views/pats.json (saved view pats) " + says), "\(frozen.stderr)")
    }
    #expect(!frozen.stderr.contains("study.cohort:9:"), "summary uses no view: \(frozen.stderr)")
    #expect(frozen.stderr.contains("frozen replay differs from the record: 4 command(s) used a view that changed since the run was recorded"))
    #expect(frozen.stdout.contains("id,sex\n"), "the commands still ran, with the current view: \(frozen.stdout)")
  }

  @Test func failedRowExpectationNamesTheViewAndSnapshot() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try Self.view.write(toFile: dir + "/pats.json", atomically: true, encoding: .utf8)
    try """
      serve --background --seed 5 --patients 10
      server add s $server_url
      cohort add dm --server s --group all-patients
      export dm
      expect rows pats.json dm == 10
      expect rows pats.json dm > 10
      summary dm
      """.write(toFile: dir + "/x.cohort", atomically: true, encoding: .utf8)
    let r = try Binary.run(["--workspace", dir + "/ws", "run", "x.cohort"], cwd: dir)
    #expect(r.status == ExitStatus.scriptStopped)
    #expect(r.stderr.contains("x.cohort:6: error: expectation failed: rows of view pats.json in dm at #1 is 10, expected > 10"), "\(r.stderr)")
  }

  @Test func replCompletesSavedViewNamesThenCohorts() async throws {
    let h = try Harness()
    let file = try h.write("views/pats.json", Self.view)
    #expect(try await h.run("view save pats \(file)") == 0, "\(h.stderr)")
    #expect(try await h.run("view save pulse \(file)") == 0, "\(h.stderr)")
    #expect(try await h.run("server add s https://fhir.example.org/r4; cohort add dm --server s --group g1") == 0, "\(h.stderr)")
    let session = h.shell.session
    for sub in ["run", "show", "materialize", "diff"] {
      #expect(Completion.candidates(line: "view \(sub) ", word: "", session: session) == ["pats", "pulse"])
      #expect(Completion.candidates(line: "view \(sub) ", word: "pa", session: session) == ["pats"])
    }
    #expect(Completion.candidates(line: "view run pats ", word: "", session: session) == ["dm"])
    #expect(Completion.candidates(line: "view show pats ", word: "", session: session) == [])
    #expect(Completion.candidates(line: "sql ", word: "d", session: session) == ["dm"])
  }

  @Test func helpViewListsTheSubcommands() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let r = try Binary.run(["help", "view"], cwd: dir)
    #expect(r.status == 0, "\(r.stderr)")
    for sub in ["run", "save", "list", "show", "materialize", "diff"] {
      #expect(r.stdout.contains("  \(sub) "), "help view lists `\(sub)`:\n\(r.stdout)")
    }
  }
}
