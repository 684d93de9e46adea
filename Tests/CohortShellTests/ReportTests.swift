import CohortTestSupport
@_spi(Store) import CohortKit
import CohortStore
import Foundation
import Testing

@testable import CohortShell

/// A workspace with one cohort and three snapshots (a full export, then two incrementals after the built-in
/// server's clock moved on: new data, patients joining and leaving), made once for the suites that read it.
/// Tests get a fresh `Harness` of their own pointed at it (they only read it).
@MainActor
final class HistoryFixture {
  static let shared = HistoryFixture()
  private var maker: Harness?
  /// Made once: callers that arrive while it is being made wait for the same task (actor reentrancy).
  private var making: Task<String, any Error>?

  func workspace() async throws -> String {
    if let making { return try await making.value }
    let task = Task { () throws -> String in try await self.make() }
    making = task
    return try await task.value
  }

  private func make() async throws -> String {
    let h = try Harness()
    maker = h
    let script = """
      serve --background --seed 7 --patients 16
      server add demo $server_url
      cohort add dm --server demo --group diabetes-patients --note "SNOMED 44054006"
      export dm
      advance --days 20
      export dm --incremental
      advance --days 20
      export dm --incremental
      """
    let status = await h.shell.runScript(script, file: "fixture", baseDirectory: h.dir)
    for server in h.shell.session.backgroundServers { await server.stop() }
    h.shell.session.backgroundServers = []
    guard status == 0 else { throw FixtureError(message: "fixture failed: \(h.stderr)") }
    return h.dir + "/Cohorts"
  }

  /// A harness of its own on a copy of the fixture's workspace (so that no two tests share a database),
  /// and the cohort's name.
  static func harness() async throws -> (Harness, String) {
    let h = try Harness()
    try await copy(to: h.shell.session.workspace.path)
    return (h, "dm")
  }

  /// Copies the fixture's workspace to `path` (which must not exist yet).
  static func copy(to path: String) async throws {
    let source = try await shared.workspace()
    try FileManager.default.copyItem(atPath: source, toPath: path)
  }
}

struct FixtureError: Error, CustomStringConvertible {
  var message: String
  var description: String { message }
}

/// `report COHORT`: one self-contained HTML page, checked as text and in a real headless browser.
@MainActor
@Suite(.serialized) struct ReportTests {
  /// Every patient id the cohort ever had (across all snapshots).
  static func allMemberIDs(_ h: Harness, _ cohort: String) throws -> Set<String> {
    let store = try h.shell.session.workspace.store(create: false)
    var ids = Set<String>()
    for snap in try store.snapshots(cohort: cohort) { ids.formUnion(try store.members(cohort: cohort, at: snap.id!)) }
    return ids
  }

  static func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

  /// The `data-point` elements inside the `<svg data-chart="NAME">` element.
  static func points(_ chart: String, in html: String) -> Int {
    guard let start = html.range(of: "data-chart=\"\(chart)\"") else { return -1 }
    guard let end = html.range(of: "</svg>", range: start.upperBound..<html.endIndex) else { return -1 }
    return count("data-point", in: String(html[start.upperBound..<end.lowerBound]))
  }

  @Test func reportIsOneSelfContainedPageWithoutPatientIDs() async throws {
    let (h, cohort) = try await HistoryFixture.harness()
    let out = h.dir + "/out/report.html"
    #expect(try await h.run("report \(cohort) --out \(out)") == 0, "\(h.stderr)")
    #expect(h.stdout.contains(out))
    let html = try String(contentsOfFile: out, encoding: .utf8)
    // Self-contained: nothing is fetched (no scripts, styles, fonts or images from anywhere).
    for banned in ["<script", "<link", "src=", "href=", "@import", "url(", "@font-face"] {
      #expect(!html.contains(banned), "the report contains \(banned)")
    }
    #expect(html.contains("default-src 'none'"))
    #expect(html.contains("prefers-color-scheme:dark") && html.contains("@media print"))
    // Patient ids never appear.
    let ids = try Self.allMemberIDs(h, cohort)
    #expect(ids.count >= 10)
    for id in ids { #expect(!html.contains(id), "patient id \(id) is in the report") }
    #expect(!html.contains("Patient/"))
    // Definition, history, charts with text alternatives and data tables, watermarks.
    #expect(html.contains("Group/diabetes-patients") && html.contains("SNOMED 44054006"))
    for chart in ["timeline", "counts", "diff", "members"] {
      #expect(html.contains("data-chart=\"\(chart)\" role=\"img\" aria-labelledby=\"\(chart)-title \(chart)-desc\""))
      #expect(html.contains("<title id=\"\(chart)-title\">") && html.contains("<desc id=\"\(chart)-desc\">"))
    }
    #expect(Self.count("<table>", in: html) == 5)
    #expect(html.contains("<h2 id=\"wm\">Watermarks</h2>") && html.contains("<caption>Watermarks</caption>"))
    // One point per value plotted.
    let report = try CohortReport.build(store: try h.shell.session.workspace.store(create: false), cohort: cohort)
    #expect(report.exports.count == 3 && report.snapshots.count == 3)
    #expect(Self.points("timeline", in: html) == 3)
    #expect(Self.points("counts", in: html) == report.types.count * 3)
    #expect(Self.points("diff", in: html) == (report.lastDiff?.rows.count ?? 0) * 3)
    #expect(Self.points("members", in: html) == 3 * 3)
    #expect(report.snapshots.contains { ($0.joined ?? 0) > 0 || ($0.left ?? 0) > 0 }, "the fixture should have joiners or leavers")
  }

  @Test func reportDefaultsToTheCohortFolderAndNamesUnknownCohorts() async throws {
    let (h, cohort) = try await HistoryFixture.harness()
    #expect(try await h.run("report \(cohort)") == 0)
    #expect(FileManager.default.fileExists(atPath: h.shell.session.workspace.cohortFolder(cohort) + "/report.html"))
    #expect(try await h.run("report nosuch") != 0)
    #expect(h.stderr.contains("nosuch"))
  }

  // MARK: A real browser

  static let chromium: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
    .first { FileManager.default.isExecutableFile(atPath: $0) }
  static var inCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

  /// Runs headless Chromium on a file; returns (stdout, stderr). Chromium stops by itself after loading
  /// (--dump-dom / --screenshot); the watchdog only guards against a browser that hangs.
  static func runChromium(_ arguments: [String], home: String) throws -> (out: String, err: String, status: Int32) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: chromium!)
    process.arguments = [
      "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--disable-extensions",
      "--user-data-dir=\(home)/profile", "--enable-logging=stderr", "--v=0",
    ] + arguments
    var env = ProcessInfo.processInfo.environment
    env["HOME"] = home
    process.environment = env
    let outPath = home + "/chromium.out"
    let errPath = home + "/chromium.err"
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let watchdog = DispatchWorkItem { if process.isRunning { process.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + 120, execute: watchdog)
    process.waitUntilExit()
    watchdog.cancel()
    return (
      (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "", (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "",
      process.terminationStatus
    )
  }

  @Test func reportLoadsInHeadlessChromiumWithoutConsoleErrorsAndScreenshots() async throws {
    guard Self.chromium != nil else {
      if Self.inCI { Issue.record("chromium is not installed (.ci/run installs it)") }
      return
    }
    let (h, cohort) = try await HistoryFixture.harness()
    let out = h.dir + "/browser/report.html"
    #expect(try await h.run("report \(cohort) --out \(out)") == 0)
    let home = h.dir + "/chromium"
    try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)

    let dump = try Self.runChromium(["--dump-dom", "file://" + out], home: home)
    #expect(dump.status == 0, "chromium failed: \(dump.err.suffix(2000))")
    // Console messages are logged as `CONSOLE(…)` / "Uncaught" / CSP refusals.
    let consoleErrors = dump.err.split(separator: "\n").filter {
      $0.contains("CONSOLE") || $0.contains("Uncaught") || $0.contains("Refused to") || $0.contains("Failed to load")
    }
    #expect(consoleErrors.isEmpty, "console errors: \(consoleErrors)")
    // The parsed DOM has every chart with its points.
    let report = try CohortReport.build(store: try h.shell.session.workspace.store(create: false), cohort: cohort)
    #expect(Self.points("timeline", in: dump.out) == report.exports.count)
    #expect(Self.points("counts", in: dump.out) == report.types.count * report.snapshots.count)
    #expect(Self.points("members", in: dump.out) == 3 * report.snapshots.count)
    #expect(Self.count("<svg", in: dump.out) == 4)

    let png = h.dir + "/browser/report.png"
    let shot = try Self.runChromium(["--window-size=1000,1600", "--hide-scrollbars", "--screenshot=\(png)", "file://" + out], home: home)
    #expect(shot.status == 0, "chromium failed: \(shot.err.suffix(2000))")
    let data = try Data(contentsOf: URL(fileURLWithPath: png))
    #expect(data.count > 10_000)
    #expect(Array(data.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "not a PNG")
    if let keep = ProcessInfo.processInfo.environment["COHORT_REPORT_SCREENSHOT"] {
      try? FileManager.default.removeItem(atPath: keep)
      try FileManager.default.copyItem(atPath: png, toPath: keep)
    }
  }
}
