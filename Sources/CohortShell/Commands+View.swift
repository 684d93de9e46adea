import ArgumentParser
import CohortKit
import Foundation

/// Output formats of view rows (`ndjson` in addition to the shell's formats).
enum ViewFormat: String, ExpressibleByArgument, CaseIterable {
  case table, plain, csv, json, ndjson
}

struct ViewCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "view",
    abstract: "SQL-on-FHIR v2 ViewDefinitions: run over NDJSON files or a cohort's snapshot; save them in the workspace.",
    subcommands: [ViewRun.self, ViewSave.self, ViewList.self, ViewShow.self, ViewMaterialize.self, ViewDiff.self])
}

struct ViewRun: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "run",
    abstract: "Rows of a view over a cohort at a snapshot (the live resources of the view's type), or over NDJSON files.",
    discussion: "`view run patients.json diabetes --at 2 --format csv --out patients.csv`; `view run patients.json ./export/` needs no workspace. VIEW is a file or a saved view's name.")
  @Argument(help: "A ViewDefinition JSON file, or the name of a saved view.") var view: String
  @Argument(help: "Cohort name, or an NDJSON file or folder.") var target: String
  @Option(help: "Snapshot: a number, latest (default) or previous.") var at: String?
  @Option(help: "Output format: table, plain, csv, json or ndjson (default: table on a terminal, plain when piped).")
  var format: ViewFormat?
  @Option(help: "Write the rows to this file instead of the terminal.") var out: String?

  @MainActor func execute(in session: Session) async throws {
    let spec: ViewSpec
    if view.hasSuffix(".json") || view.contains("/") {
      spec = try ViewSpec(path: session.resolvePath(view))
    } else {
      spec = try SavedViews(workspace: session.workspace).load(view)
    }
    var isDir: ObjCBool = false
    let targetPath = session.resolvePath(target)
    let isPath =
      (target.contains("/") || target.hasSuffix(".ndjson") || target.hasSuffix(".gz"))
      && FileManager.default.fileExists(atPath: targetPath, isDirectory: &isDir)
    let fmt: ViewFormat = format ?? (session.effectiveFormat == .table ? .table : (session.effectiveFormat == .csv ? .csv : (session.effectiveFormat == .json ? .json : .plain)))
    let sink = try RowSink(format: fmt, columns: spec.columnNames, out: out, session: session)
    let stats: ViewRunStats
    if isPath {
      if at != nil { throw KitError.invalidArgument("--at applies to a cohort, not to files") }
      stats = try ViewRunner.run(spec, files: try ViewRunner.ndjsonFiles(at: targetPath)) { try sink.add($0) }
    } else {
      let kit = try session.open(create: false)
      let snapshots = try kit.snapshotReader(pinned: session.pinnedLatest)
      let snap = try snapshots.resolve(cohort: target, at)
      stats = try kit.runView(spec, cohort: target, at: snap.id!) {
        try sink.add($0)
      }
    }
    try sink.finish()
    if out != nil || session.interactive {
      session.note("\(stats.rows) rows from \(stats.resources) \(spec.resource) resources" + (out.map { " → \($0)" } ?? ""))
    }
  }
}

/// Streams rows to the terminal or a file; table output is aligned, so it is gathered first.
@MainActor
final class RowSink {
  let format: ViewFormat
  let columns: [String]
  let session: Session
  var handle: FileHandle?
  var tableRows: [[String]] = []
  var buffer = ""
  var count = 0

  init(format: ViewFormat, columns: [String], out: String?, session: Session) throws {
    self.format = format
    self.columns = columns
    self.session = session
    if let given = out {
      let out = session.resolvePath(given)
      guard FileManager.default.createFile(atPath: out, contents: nil) else {
        throw KitError.failed("cannot create \(out)")
      }
      handle = FileHandle(forWritingAtPath: out)
    }
    switch format {
    case .csv: write(csvLine(columns))
    case .json: write("[")
    default: break
    }
  }

  func write(_ text: String) {
    buffer += text
    if buffer.utf8.count >= 1 << 16 { flush() }
  }

  func flush() {
    guard !buffer.isEmpty else { return }
    if let handle {
      handle.write(Data(buffer.utf8))
    } else {
      session.out(buffer)
    }
    buffer = ""
  }

  func csvLine(_ cells: [String]) -> String {
    var line = ""
    for (i, s) in cells.enumerated() {
      if i > 0 { line += "," }
      if s.utf8.contains(where: { $0 == 0x2C || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }) {
        line += "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
      } else {
        line += s
      }
    }
    return line + "\n"
  }

  func add(_ row: ViewRow) throws {
    count += 1
    switch format {
    case .table: tableRows.append(row.cells)
    case .plain: write(row.cells.joined(separator: "\t") + "\n")
    case .csv: write(csvLine(row.cells))
    case .ndjson: write(row.jsonObject(columns: columns) + "\n")
    case .json: write((count > 1 ? ",\n" : "\n") + row.jsonObject(columns: columns))
    }
  }

  func finish() throws {
    switch format {
    case .table: write(Table(columns: columns, rows: tableRows).render(.table))
    case .json: write(count > 0 ? "\n]\n" : "]\n")
    default: break
    }
    flush()
    try handle?.close()
  }
}

struct ViewSave: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "save", abstract: "Validate a ViewDefinition file and keep it in the workspace under NAME.")
  @Argument(help: "View name (a-z, 0-9, _ and -).") var name: String
  @Argument(help: "ViewDefinition JSON file.") var file: String

  @MainActor func execute(in session: Session) async throws {
    _ = try session.open(create: true)
    let spec = try SavedViews(workspace: session.workspace).save(name: name, from: session.resolvePath(file))
    session.note("saved view \(name): \(spec.resource), \(spec.columnNames.count) columns")
  }
}

struct ViewList: ShellCommand {
  static let configuration = CommandConfiguration(commandName: "list", abstract: "Views saved in the workspace.")
  @OptionGroup var output: FormatOption

  @MainActor func execute(in session: Session) async throws {
    let saved = SavedViews(workspace: session.workspace)
    var rows: [[String]] = []
    for name in saved.names() {
      if let spec = try? saved.load(name) {
        rows.append([name, spec.resource, spec.columnNames.joined(separator: ", "), String(spec.sha256.prefix(12))])
      } else {
        rows.append([name, "(invalid)", "", ""])
      }
    }
    session.emit(Table(columns: ["name", "resource", "columns", "sha256"], rows: rows), format: output.format)
  }
}

struct ViewShow: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "show", abstract: "A saved view's columns (FHIR type → SQL type); --json for its definition.")
  @Argument(help: "View name.") var name: String
  @Flag(help: "Print the ViewDefinition JSON as saved.") var json = false
  @OptionGroup var output: FormatOption

  @MainActor func execute(in session: Session) async throws {
    let spec = try SavedViews(workspace: session.workspace).load(name)
    if json {
      session.print(String(decoding: FileManager.default.contents(atPath: spec.path) ?? Data(), as: UTF8.self))
      return
    }
    if session.effectiveFormat == .table && output.format == nil {
      session.print("view \(name): \(spec.resource) (sha256 \(spec.sha256.prefix(12)))")
    }
    session.emit(Table(columns: ["column", "type", "sql"], rows: spec.columnSummary), format: output.format)
  }
}

/// A view given as a file (`*.json` or a path) or a saved view's name.
@MainActor func loadView(_ text: String, _ session: Session) throws -> ViewSpec {
  if text.hasSuffix(".json") || text.contains("/") { return try ViewSpec(path: session.resolvePath(text)) }
  return try SavedViews(workspace: session.workspace).load(text)
}

struct ViewMaterialize: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "materialize",
    abstract: "Write a view's rows at a snapshot into the cohort's analysis database (table NAME, typed columns) for `sql`.")
  @Argument(help: "Saved view name (also the table name), or a view file.") var name: String
  @Argument(help: "Cohort name.") var cohort: String
  @Option(help: "Snapshot: a number, latest (default) or previous.") var at: String?
  @OptionGroup var output: FormatOption

  @MainActor func execute(in session: Session) async throws {
    let spec = try loadView(name, session)
    let table = name.hasSuffix(".json") || name.contains("/")
      ? (spec.name ?? URL(fileURLWithPath: name).deletingPathExtension().lastPathComponent) : name
    let kit = try session.open(create: false)
    let snapshots = try kit.snapshotReader(pinned: session.pinnedLatest)
    let snap = try snapshots.resolve(cohort: cohort, at)
    let meta = try kit.materializeView(spec, name: table, cohort: cohort, snapshot: snap)
    session.emit(
      Table(
        columns: ["table", "rows", "snapshot", "transactionTime", "view sha256"],
        rows: [[meta.table, String(meta.rows), "#\(meta.snapshotSeq)", meta.transactionTime ?? "", String(meta.viewSHA256.prefix(12))]],
        integers: ["rows"]),
      format: output.format)
  }
}

struct ViewDiff: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "diff", abstract: "Rows of a view added and removed between two snapshots (default: the last two).")
  @Argument(help: "Saved view name or view file.") var name: String
  @Argument(help: "Cohort name.") var cohort: String
  @Argument(help: "From snapshot (default: previous).") var from: String?
  @Argument(help: "To snapshot (default: latest).") var to: String?
  @OptionGroup var output: FormatOption

  @MainActor func execute(in session: Session) async throws {
    let spec = try loadView(name, session)
    let kit = try session.open(create: false)
    let snapshots = try kit.snapshotReader(pinned: session.pinnedLatest)
    let b = try snapshots.resolve(cohort: cohort, to ?? "latest")
    let a = try snapshots.resolve(cohort: cohort, from ?? (to == nil ? "previous" : String(b.seq - 1)))
    let (added, removed) = try kit.diffView(spec, cohort: cohort, from: a.id!, to: b.id!)
    if session.effectiveFormat == .table && output.format == nil {
      session.print("#\(a.seq) → #\(b.seq): \(added.count) rows added, \(removed.count) removed")
    }
    let rows = added.map { ["+"] + $0.cells } + removed.map { ["-"] + $0.cells }
    session.emit(Table(columns: ["change"] + spec.columnNames, kinds: [.text] + spec.columnKinds, rows: rows), format: output.format)
  }
}

struct SQLCommand: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "sql",
    abstract: "Read-only SQL over a cohort's materialized views (a statement that writes is refused).",
    discussion: "`sql diabetes 'SELECT gender, avg(value) FROM hba1c JOIN patient_demographics USING (patient_id) GROUP BY gender'`. Tables: the views materialized with `view materialize`, and _materialized (where each came from).")
  @Argument(help: "Cohort name.") var cohort: String
  @Argument(help: "One SQL statement (quote it).") var statement: String
  @OptionGroup var output: FormatOption

  @MainActor func execute(in session: Session) async throws {
    let result = try ViewAnalysis.query(workspace: session.workspace, cohort: cohort, sql: statement)
    session.emit(Table(columns: result.columns, kinds: result.kinds, rows: result.rows), format: output.format)
  }
}

/// The view a command line uses (`view save NAME FILE`, `view run|materialize|diff VIEW …`, `expect rows VIEW …`),
/// the file its definition was read from and that file's SHA-256, for run records and `replay --frozen`; nil when
/// the line uses none or it cannot be read.
@MainActor func viewUsed(by words: [String], session: Session) -> (view: String, path: String, sha256: String)? {
  guard words.count >= 3 else { return nil }
  let name: String
  switch (words[0], words[1]) {
  case ("view", "save"):
    guard words.count >= 4, let spec = try? ViewSpec(path: session.resolvePath(words[3])) else { return nil }
    return (words[3], spec.path, spec.sha256)
  case ("view", "run"), ("view", "materialize"), ("view", "diff"), ("view", "show"), ("expect", "rows"):
    name = words[2]
  default:
    return nil
  }
  guard let spec = try? loadView(name, session) else { return nil }
  return (name, spec.path, spec.sha256)
}

/// `expect rows VIEW COHORT OP N`: the number of rows of the view at the cohort's latest snapshot
/// (pinned during `replay --frozen`), and that snapshot's number.
@MainActor func viewRowCount(
  _ view: String, cohort: String, workspace: Workspace, snapshots: Snapshots, session: Session
) throws -> (rows: Int, seq: Int) {
  let spec = try loadView(view, session)
  let snap = try snapshots.resolve(cohort: cohort, nil)
  let stats = try workspace.runView(spec, cohort: cohort, at: snap.id!) { _ in }
  return (stats.rows, snap.seq)
}
