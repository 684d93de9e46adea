import Foundation
import Testing

/// End to end: the built binary replays every `Notebooks/*.cohort` against the built-in server (fixed
/// seeds, pinned local clock) and the transcript must equal the checked-in one in `Notebooks/transcripts/`.
/// Re-record after an intended change with `COHORT_RECORD_TRANSCRIPTS=1 make test`.
@Suite(.serialized) struct NotebookTests {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
  static let notebooks: [String] = {
    let dir = root.appendingPathComponent("Notebooks").path
    return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".cohort") }.sorted()
  }()

  /// Ports differ from run to run; nothing else may.
  static func normalize(_ text: String) -> String {
    text.replacingOccurrences(of: #"127\.0\.0\.1:[0-9]+"#, with: "127.0.0.1:PORT", options: .regularExpression)
  }

  @Test(arguments: notebooks)
  func transcriptMatches(_ notebook: String) throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let result = try Binary.run(
      ["--workspace", dir + "/Cohorts", "--format", "table", "--echo", "run", Self.root.appendingPathComponent("Notebooks/" + notebook).path],
      cwd: dir, environment: ["COHORT_NOW": "2026-01-01T00:00:00Z", "NO_COLOR": "1"])
    let transcript = Self.normalize(result.stdout) + "# exit \(result.status)\n"
    let goldenPath = Self.root.appendingPathComponent("Notebooks/transcripts/" + notebook.replacingOccurrences(of: ".cohort", with: ".out")).path
    if ProcessInfo.processInfo.environment["COHORT_RECORD_TRANSCRIPTS"] != nil {
      try transcript.write(toFile: goldenPath, atomically: true, encoding: .utf8)
      return
    }
    let golden = try String(contentsOfFile: goldenPath, encoding: .utf8)
    #expect(result.status == 0, "\(notebook) failed:\n\(result.stderr)")
    #expect(transcript == golden, "transcript of \(notebook) differs; stderr:\n\(result.stderr)")
  }
}
