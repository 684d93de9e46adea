import ArgumentParser
import CohortKit
import Foundation

struct SummaryCommand: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "summary",
    abstract: "Resources per type at a snapshot (with the change since the previous one), or counts straight from NDJSON files.")
  @Argument(help: "Cohort name, or an NDJSON file or folder (no workspace needed).", completion: .cohortName) var target: String
  @Option(help: "Snapshot: a number, latest (default) or previous.") var at: String?
  @Option(help: "patient: per-patient count distributions (min/median/max).") var by: String?
  @Flag(help: "Then a sparkline per type over the snapshots (on a terminal; --color forces it).") var chart = false
  @OptionGroup var output: FormatOption

  func validate() throws {
    if let by, by != "patient" { throw ValidationError("--by takes 'patient'") }
  }

  @MainActor func execute(in session: Session) async throws {
    var isDir: ObjCBool = false
    if target.contains("/") || target.hasSuffix(".ndjson") || target.hasSuffix(".gz"),
      FileManager.default.fileExists(atPath: target, isDirectory: &isDir)
    {
      try await summarizeFiles(session)
      return
    }
    let kit = try session.open(create: false)
    let snapshots = try kit.snapshotReader(pinned: session.pinnedLatest)
    if by == "patient" {
      let snap = try snapshots.resolve(cohort: target, at)
      let perType = try kit.perPatientCounts(cohort: target, at: snap.id!)
      let rows = perType.keys.sorted().map { type -> [String] in
        let counts = perType[type] ?? []
        let median = counts.isEmpty ? 0 : counts[counts.count / 2]
        return [type, String(counts.count), String(counts.first ?? 0), String(median), String(counts.last ?? 0)]
      }
      session.emit(Table(columns: ["type", "patients", "min", "median", "max"], rows: rows, integers: ["patients", "min", "median", "max"]), format: output.format)
      return
    }
    let (snap, rows) = try snapshots.summary(cohort: target, at: at)
    var table = rows.map { r in [r.type, String(r.count), r.change.map { $0 > 0 ? "+\($0)" : String($0) } ?? ""] }
    table.append(["total", String(rows.reduce(0) { $0 + $1.count }), rows.first?.change == nil ? "" : signed(rows.reduce(0) { $0 + ($1.change ?? 0) })])
    if session.effectiveFormat == .table && output.format == nil {
      session.print("snapshot #\(snap.seq) (\(snap.kind), transactionTime \(snap.transactionTime ?? "?"))")
    }
    session.emit(Table(columns: ["type", "resources", "change"], rows: table, integers: ["resources", "change"]), format: output.format)
    if chart, TerminalCharts.enabled(session, format: output.format) {
      session.print(try TerminalCharts.summary(cohort: target, upTo: snap.seq, workspace: kit, pinned: session.pinnedLatest))
    }
  }

  func signed(_ n: Int) -> String { n > 0 ? "+\(n)" : String(n) }

  @MainActor func summarizeFiles(_ session: Session) async throws {
    let counts = try await Snapshots.countByType(path: target)
    var rows = counts.keys.sorted().map { [$0, String(counts[$0] ?? 0)] }
    rows.append(["total", String(counts.values.reduce(0, +))])
    session.emit(Table(columns: ["type", "resources"], rows: rows, integers: ["resources"]), format: output.format)
  }
}

struct DiffCommand: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "diff",
    abstract: "What changed between two snapshots (default: the last two): added, changed, removed, unchanged; joiners and leavers.")
  @Argument(help: "Cohort name.", completion: .cohortName) var cohort: String
  @Argument(help: "From snapshot (default: previous).") var from: String?
  @Argument(help: "To snapshot (default: latest).") var to: String?
  @Option(name: .customLong("type"), help: "Only this resource type.", completion: .resourceTypes) var type: String?
  @Flag(help: "List the ids.") var ids = false
  @OptionGroup var output: FormatOption

  @MainActor func execute(in session: Session) async throws {
    let kit = try session.open(create: false)
    let snapshots = try kit.snapshotReader(pinned: session.pinnedLatest)
    let b = try snapshots.resolve(cohort: cohort, to ?? "latest")
    let a = try snapshots.resolve(cohort: cohort, from ?? (to == nil ? "previous" : String(b.seq - 1)))
    guard a.id! < b.id! else {
      throw KitError.invalidArgument("diff compares an older snapshot with a newer one (#\(a.seq) is not before #\(b.seq))")
    }
    let diff = try kit.diff(cohort: cohort, from: a.id!, to: b.id!, type: type)
    if ids {
      var rows: [[String]] = []
      for t in diff.types {
        rows += (diff.added[t] ?? []).map { ["added", t, $0] }
        rows += (diff.changed[t] ?? []).map { ["changed", t, $0] }
        rows += (diff.removed[t] ?? []).map { ["removed", t, $0] }
      }
      rows += diff.joined.map { ["joined", "Patient", $0] }
      rows += diff.left.map { ["left", "Patient", $0] }
      session.emit(Table(columns: ["change", "type", "id"], rows: rows), format: output.format)
      return
    }
    if session.effectiveFormat == .table && output.format == nil {
      session.print("#\(a.seq) (\(a.transactionTime ?? "?")) → #\(b.seq) (\(b.transactionTime ?? "?"))")
    }
    var rows = diff.types.map { t in
      [t, String(diff.added[t]?.count ?? 0), String(diff.changed[t]?.count ?? 0), String(diff.removed[t]?.count ?? 0), String(diff.unchanged[t] ?? 0)]
    }
    rows.append(["members", String(diff.joined.count), "", String(diff.left.count), ""])
    session.emit(Table(columns: ["type", "added", "changed", "removed", "unchanged"], rows: rows, integers: ["added", "changed", "removed", "unchanged"]), format: output.format)
  }
}

struct ShowCommand: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "show", abstract: "A resource's JSON as it was at a snapshot; --versions for its history.")
  @Argument(help: "Cohort name.", completion: .cohortName) var cohort: String
  @Argument(help: "Type/id, e.g. Patient/123.") var reference: String
  @Option(help: "Snapshot: a number, latest (default) or previous.") var at: String?
  @Flag(help: "Every stored version across snapshots.") var versions = false
  @OptionGroup var output: FormatOption

  @MainActor func execute(in session: Session) async throws {
    let kit = try session.open(create: false)
    let snapshots = try kit.snapshotReader(pinned: session.pinnedLatest)
    let found = try snapshots.show(cohort: cohort, reference: reference, at: at, allVersions: versions)
    if versions {
      let seqs = Dictionary(uniqueKeysWithValues: try kit.exports(cohort: cohort).map { ($0.id!, $0.seq) })
      session.emit(
        Table(
          columns: ["from", "until", "versionId", "lastUpdated", "hash"],
          rows: found.map { v, _ in
            ["#\(seqs[v.validFrom] ?? 0)", v.validTo.map { "#\(seqs[$0] ?? 0)" } ?? "(current)", v.versionId ?? "", v.lastUpdated ?? "", v.hash]
          }), format: output.format)
      return
    }
    for (_, data) in found { session.print(String(decoding: data, as: UTF8.self)) }
  }
}
