import CohortBasics
import ArgumentParser
import CohortKit
import Foundation

/// Builds a run record while a notebook (or an interactive session with `record on`) runs.
@MainActor
final class Recorder {
  var record: RunRecord
  let path: String
  let baselineExportID: Int64
  var variables: [String: String] = [:]

  init(path: String, notebook: String, session: Session) {
    self.path = path
    record = RunRecord(
      tool: RunRecord.Tool(version: CohortVersion.string, commit: CohortVersion.commit), notebook: notebook,
      workspace: session.workspace.path, started: isoNow())
    let kit = session.workspace.exists ? try? session.open(create: false) : nil
    baselineExportID = (try? kit?.exports(cohort: nil).last?.id ?? 0) ?? 0
  }

  func commandFinished(line: Int, text: String, words: [String], status: Int32, output: String, session: Session) {
    var latest: [String: Int] = [:]
    var parameters: String?
    if session.workspace.exists, let kit = try? session.open(create: false) {
      for cohort in (try? kit.cohorts()) ?? [] {
        if let last = try? kit.snapshots(cohort: cohort.name).last { latest[cohort.name] = last.seq }
      }
      if words.first == "export", words.count > 1, let job = try? kit.exports(cohort: words[1]).last,
        (job.id ?? 0) > baselineExportID
      {
        parameters = job.paramsJSON
      }
    }
    let redacted = RunRecord.redact(words)
    var command = RunRecord.Command(
      line: line, text: RunRecord.redact(text.split(separator: " ").map(String.init)).joined(separator: " "),
      words: redacted, status: status, output: output, keepOutput: stateCommands.contains(words.first ?? ""),
      latest: latest, parameters: parameters)
    if let used = viewUsed(by: words, session: session) {
      command.view = used.view
      command.viewSHA256 = used.sha256
    }
    record.commands.append(command)
  }

  func finish(status: Int32, session: Session) throws {
    record.finished = isoNow()
    record.variables = session.variables.filter { !Redaction.secretName($0.key) && !Secrets.lineCarriesSecret($0.value) }
    record.exitStatus = status
    if session.workspace.exists {
      try session.open(create: false).collect(&record, afterExportID: baselineExportID)
    }
    try record.write(path: path)
    session.note("run record written to \(path)")
  }
}

/// A command whose effect is on the server or the store, or whose output is the live workspace's (history, status):
/// `replay --frozen` does not run it but prints what the run record says it printed. Declared on the command's type.
protocol ReplayedFromRecord {}

/// The top-level names of the `ReplayedFromRecord` commands, derived from the command table.
let stateCommands: Set<String> = Set(CommandTable.all.compactMap { $0 is any ReplayedFromRecord.Type ? $0.configuration.commandName : nil })

struct RecordCommand: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "record", abstract: "Record this session's commands and exports to a run record (on [FILE] / off).")
  @Argument(help: "on or off.") var state: String
  @Argument(help: "Where to write the record (default: session.run.json).") var file: String?

  @MainActor func execute(in session: Session) async throws {
    switch state {
    case "on":
      guard session.recorder == nil else { throw ValidationError("already recording to \(session.recorder!.path)") }
      let path = Workspace.absolutePath(file ?? "session.run.json")
      session.recorder = Recorder(path: path, notebook: "(interactive)", session: session)
      session.note("recording to \(path); `record off` writes it")
    case "off":
      guard let recorder = session.recorder else { throw ValidationError("not recording") }
      session.recorder = nil
      try recorder.finish(status: 0, session: session)
    default:
      throw ValidationError("record takes on or off")
    }
  }
}

struct VerifyCommand: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "verify",
    abstract: "Check, without network, that every file in a notebook's run record is present and unchanged and the index agrees.")
  @Argument(help: "The notebook (NOTEBOOK.cohort) or its record (NOTEBOOK.run.json).") var notebook: String
  @OptionGroup var output: FormatOption

  @MainActor func execute(in session: Session) async throws {
    let path = notebook.hasSuffix(".run.json") ? notebook : RunRecord.path(forNotebook: notebook)
    let record = try RunRecord.load(path: path)
    let workspace = session.workspace.location.source == .option || session.workspace.path == record.workspace
      ? session.workspace : Workspace(location: WorkspaceLocation(path: record.workspace, source: .option))
    let findings = try RunVerifier.verify(record, workspace: workspace)
    let files = record.exports.reduce(0) { $0 + $1.files.count }
    if findings.isEmpty {
      session.print("verified: \(files) file(s) of \(record.exports.count) export(s) present and unchanged; the index agrees")
      return
    }
    session.emit(Table(columns: ["problem", "path", "detail"], rows: findings.map { [$0.kind, $0.path, $0.detail] }), format: output.format)
    throw KitError.failed("\(findings.count) difference(s) between \(path) and the workspace \(workspace.path)")
  }
}

struct ReplayCommand: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "replay",
    abstract: "Re-run a recorded notebook; --frozen runs the analysis against the recorded snapshots (byte-identical output).",
    discussion: "Without --frozen it exports again and names each command whose output or status differs from the record. With --frozen, a view (file or saved view) whose sha256 differs from the recorded one is named at its line with both hashes: the replay goes on, and exits 1.")
  @Argument(help: "The notebook (NOTEBOOK.cohort).") var notebook: String
  @Flag(help: "Do not export again: analysis commands run against the recorded snapshots.") var frozen = false
  @MainActor func execute(in session: Session) async throws {}
}

struct ExpectCommand: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "expect",
    abstract: "Assert in scripts: `expect count COHORT TYPE OP N`, `expect rows VIEW COHORT OP N`, `expect diff COHORT TYPE added|changed|removed OP N`, `expect members COHORT OP N`, `expect snapshots COHORT OP N`.",
    discussion: "OP is one of == != < <= > >=. A failed expectation fails the script at FILE:LINE.")
  @Argument(help: "count, rows, diff, members or snapshots, then the arguments.") var words: [String]

  @MainActor func execute(in session: Session) async throws {
    guard let what = words.first else { throw ValidationError("expect needs: count, rows, diff, members or snapshots") }
    let kit = try session.open(create: false)
    let snapshots = try kit.snapshotReader(pinned: session.pinnedLatest)
    func compare(_ actual: Int, _ op: String, _ expected: String, _ label: String) throws {
      guard let n = Int(expected) else { throw ValidationError("'\(expected)' is not a whole number") }
      let ok: Bool
      switch op {
      case "==", "=": ok = actual == n
      case "!=": ok = actual != n
      case "<": ok = actual < n
      case "<=": ok = actual <= n
      case ">": ok = actual > n
      case ">=": ok = actual >= n
      default: throw ValidationError("'\(op)' is not a comparison (== != < <= > >=)")
      }
      if !ok { throw KitError.failed("expectation failed: \(label) is \(actual), expected \(op) \(n)") }
    }
    let args = Array(words.dropFirst())
    switch what {
    case "count":
      guard args.count == 4 else { throw ValidationError("usage: expect count COHORT TYPE OP N") }
      let snap = try snapshots.resolve(cohort: args[0], nil)
      let n = try kit.counts(cohort: args[0], at: snap.id!)[args[1]] ?? 0
      try compare(n, args[2], args[3], "\(args[1]) in \(args[0]) at #\(snap.seq)")
    case "rows":
      guard args.count == 4 else { throw ValidationError("usage: expect rows VIEW COHORT OP N") }
      let (n, seq) = try viewRowCount(args[0], cohort: args[1], workspace: kit, snapshots: snapshots, session: session)
      try compare(n, args[2], args[3], "rows of view \(args[0]) in \(args[1]) at #\(seq)")
    case "diff":
      guard args.count == 5 else { throw ValidationError("usage: expect diff COHORT TYPE added|changed|removed OP N") }
      let b = try snapshots.resolve(cohort: args[0], "latest")
      let a = try snapshots.resolve(cohort: args[0], "previous")
      let diff = try kit.diff(cohort: args[0], from: a.id!, to: b.id!, type: args[1])
      let n: Int
      switch args[2] {
      case "added": n = diff.added[args[1]]?.count ?? 0
      case "changed": n = diff.changed[args[1]]?.count ?? 0
      case "removed": n = diff.removed[args[1]]?.count ?? 0
      default: throw ValidationError("expect diff takes added, changed or removed")
      }
      try compare(n, args[3], args[4], "\(args[2]) \(args[1]) in \(args[0]) #\(a.seq)→#\(b.seq)")
    case "members":
      guard args.count == 3 else { throw ValidationError("usage: expect members COHORT OP N") }
      let snap = try snapshots.resolve(cohort: args[0], nil)
      try compare(try kit.members(cohort: args[0], at: snap.id!).count, args[1], args[2], "members of \(args[0]) at #\(snap.seq)")
    case "snapshots":
      guard args.count == 3 else { throw ValidationError("usage: expect snapshots COHORT OP N") }
      _ = try kit.cohort(named: args[0])
      try compare(try snapshots.snapshots(cohort: args[0]).count, args[1], args[2], "snapshots of \(args[0])")
    default:
      throw ValidationError("expect needs: count, rows, diff, members or snapshots (not '\(what)')")
    }
  }
}
