import ArgumentParser
import CohortKit
import Foundation

struct ReportCommand: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "report",
    abstract: "Write one self-contained HTML page about a cohort: definition, export history, counts and membership over time, the last diff, watermarks.",
    discussion: "The page has no scripts and loads nothing from the network (inline SVG charts, each with a data "
      + "table); it reads well in light and dark mode and prints. It holds counts only: no patient ids.")
  @Argument(help: "Cohort name.", completion: .cohortName) var cohort: String
  @Option(help: "Where to write it (default: WORKSPACE/COHORT/report.html).", completion: .file(extensions: ["html"]))
  var out: String?
  @Flag(help: "Open it in the default browser afterwards.") var open = false

  @MainActor func execute(in session: Session) async throws {
    let kit = try session.open(create: false)
    let report = try kit.report(cohort: cohort, pinned: session.pinnedLatest)
    let path = out.map { Workspace.absolutePath($0) } ?? session.workspace.cohortFolder(cohort) + "/report.html"
    let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
    do {
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      try Data(report.html(generator: CohortVersion.line).utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
      throw KitError.failed("cannot write the report to \(path): \(error.localizedDescription)")
    }
    session.print(path)
    if open { Browser.open(path, session: session) }
  }
}

/// Opens a file with the desktop's default application (`xdg-open`, `open` on macOS), without waiting.
@MainActor
enum Browser {
  static func open(_ path: String, session: Session) {
    #if os(macOS)
      let opener = "open"
    #else
      let opener = "xdg-open"
    #endif
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [opener, path]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    do {
      try process.run()
    } catch {
      session.warn("cannot start \(opener) (\(error.localizedDescription)); open \(path) in a browser yourself")
    }
  }
}

struct ClearCommand: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "clear", abstract: "Clear the terminal screen (also Ctrl-L at the prompt).")
  @MainActor func execute(in session: Session) async throws {
    // Only a terminal is cleared: in a script or a pipe, `clear` writes nothing into the output.
    guard session.stdout.isTerminal else { return }
    session.stdout.write("\u{1B}[H\u{1B}[2J\u{1B}[3J")
  }
}

// MARK: Text charts (`history --chart`, `summary --chart`)

@MainActor
enum TerminalCharts {
  /// Charts are drawn where colour would be (a terminal without NO_COLOR, or forced with `--color` /
  /// `set color on`), and never into json or csv output.
  static func enabled(_ session: Session, format: OutputFormat?) -> Bool {
    let effective = format ?? session.effectiveFormat
    guard effective == .table || effective == .plain else {
      session.note("--chart is not drawn with --format \(effective.rawValue)")
      return false
    }
    guard session.color else {
      session.note("--chart is off when the output is not a terminal or NO_COLOR is set (--color forces it)")
      return false
    }
    return true
  }

  /// Under `history`: resources in the cohort and members at each snapshot, one bar per export.
  static func history(cohort: String, workspace: Workspace, pinned: [String: Int]?) throws -> String {
    let report = try workspace.report(cohort: cohort, pinned: pinned)
    guard !report.exports.isEmpty else { return "" }
    let bySeq = Dictionary(uniqueKeysWithValues: report.snapshots.map { ($0.seq, $0) })
    let top = report.snapshots.map(\.total).max() ?? 0
    let labels = report.exports.map { "#\($0.seq) \($0.kind)" }
    let labelWidth = labels.map(\.count).max() ?? 0
    var lines = ["resources in the cohort after each export"]
    for (e, label) in zip(report.exports, labels) {
      let pad = label.padding(toLength: labelWidth, withPad: " ", startingAt: 0)
      if let snap = bySeq[e.seq] {
        let bar = TextChart.bar(snap.total, maximum: top, width: 30)
        lines.append("\(pad)  \(bar.padding(toLength: 30, withPad: " ", startingAt: 0)) \(snap.total)")
      } else {
        lines.append("\(pad)  (\(e.outcome))")
      }
    }
    if report.snapshots.count > 1 {
      let members = report.snapshots.map { Optional($0.members) }
      lines.append(
        "members \(TextChart.sparkline(members))  \(report.snapshots.first!.members) → \(report.snapshots.last!.members)")
    }
    return lines.joined(separator: "\n") + "\n"
  }

  /// Under `summary`: per type, a sparkline of its count over the snapshots up to the one shown.
  static func summary(cohort: String, upTo seq: Int, workspace: Workspace, pinned: [String: Int]?) throws -> String {
    let report = try workspace.report(cohort: cohort, pinned: pinned)
    let snaps = report.snapshots.filter { $0.seq <= seq }
    guard let first = snaps.first, let last = snaps.last else { return "" }
    let types = report.types.filter { t in snaps.contains { $0.counts[t] != nil } }
    let width = max(types.map(\.count).max() ?? 0, 5)
    var lines = ["over \(snaps.count) snapshot\(snaps.count == 1 ? "" : "s") (#\(first.seq)…#\(last.seq))"]
    for t in types + ["total"] {
      let values = snaps.map { s -> Int? in t == "total" ? s.total : s.counts[t] ?? 0 }
      let a = values.first.flatMap { $0 } ?? 0
      let b = values.last.flatMap { $0 } ?? 0
      lines.append("\(t.padding(toLength: width, withPad: " ", startingAt: 0))  \(TextChart.sparkline(values))  \(a) → \(b)")
    }
    return lines.joined(separator: "\n") + "\n"
  }
}
