import CohortBasics
import ArgumentParser
import CohortKit
import Foundation
import Synchronization

/// The command table: the same grammar for argv, the REPL, `-c`, scripts and stdin.
struct CohortCommands: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "cohort",
    abstract: "Pull patient cohorts out of FHIR servers with Bulk Data $export, and keep their history.",
    discussion: """
      Exit codes: 0 ok, 1 command failed, 2 server/network, 3 script stopped, 64 usage, 130 interrupted.
      """,
    subcommands: CommandTable.all)
}

enum CommandTable {
  static let all: [any ParsableCommand.Type] = [
    ServerCommand.self, CohortGroupCommand.self,
    SetCommand.self, RunCommand.self, SleepCommand.self, VersionCommand.self, QuitCommand.self,
  ] + extraCommands

  /// Top-level command names (for completion and "did you mean").
  static var names: [String] {
    all.compactMap { $0.configuration.commandName } + ["help", "exit"]
  }

  /// Subcommand names of a command group.
  static func subcommands(of name: String) -> [String] {
    guard let group = all.first(where: { $0.configuration.commandName == name }) else { return [] }
    return group.configuration.subcommands.compactMap { $0.configuration.commandName }
  }

  /// The command type for a path of words (e.g. ["server", "add"]), for `help` and completion.
  static func command(for path: [String]) -> (any ParsableCommand.Type)? {
    var candidates = all
    var found: (any ParsableCommand.Type)?
    for word in path {
      guard let next = candidates.first(where: { $0.configuration.commandName == word }) else { break }
      found = next
      candidates = next.configuration.subcommands
    }
    return found
  }
}

/// The stop of a session by `quit`/`exit`.
struct QuitRequest: Error {}

/// Runs commands and scripts against one session.
/// Main-actor isolated, like its `Session`.
@MainActor
public final class Shell {
  public let session: Session
  static let maxIncludeDepth = 16

  public init(session: Session) {
    self.session = session
  }

  /// Runs one command given as words. Returns its exit status.
  public func run(words: [String], at location: SourceLocation? = nil) async -> Int32 {
    guard let first = words.first else { return ExitStatus.ok }
    if first == "help" || first == "--help" || first == "-h" {
      return help(Array(words.dropFirst()), at: location)
    }
    if first == "exit" { return run(quit: location) }
    if !CommandTable.names.contains(first) {
      let hint = nearest(first, in: CommandTable.names).map { " — did you mean '\($0)'?" } ?? ""
      session.error("unknown command '\(first)'\(hint) (try `help`)", at: location)
      return ExitStatus.usage
    }
    let path = CommandTable.pathWords(words)
    if words.contains("--help") || words.contains("-h") {
      return help(path, at: location)
    }
    if let group = CommandTable.command(for: path), !group.configuration.subcommands.isEmpty,
      words.count > path.count, !words[path.count].hasPrefix("-")
    {
      let names = group.configuration.subcommands.compactMap { $0.configuration.commandName }
      let word = words[path.count]
      let hint = nearest(word, in: names).map { " — did you mean '\($0)'?" } ?? ""
      session.error(
        "unknown subcommand '\(word)' of '\(path.joined(separator: " "))'\(hint) (choose from: \(names.joined(separator: ", ")))",
        at: location)
      return ExitStatus.usage
    }
    let parsed: any ParsableCommand
    do {
      parsed = try CohortCommands.parseAsRoot(words)
    } catch {
      let code = CohortCommands.exitCode(for: error)
      if code == .success {
        // --help on a command: print its help on stdout.
        session.print(CohortCommands.fullMessage(for: error))
        return ExitStatus.ok
      }
      var message = CohortCommands.message(for: error)
      if message.isEmpty { message = "incomplete command" }
      if let group = CommandTable.command(for: words), !group.configuration.subcommands.isEmpty,
        words.count == CommandTable.pathLength(words)
      {
        message = "'\(words.joined(separator: " "))' needs a subcommand: "
          + group.configuration.subcommands.compactMap { $0.configuration.commandName }.joined(separator: ", ")
      }
      session.error(message + " (see `help \(CommandTable.pathWords(words).joined(separator: " "))`)", at: location)
      return ExitStatus.usage
    }
    guard let command = parsed as? any ShellCommand else {
      let path = CommandTable.pathWords(words)
      session.error(
        "'\(path.joined(separator: " "))' needs a subcommand: "
          + CommandTable.subcommands(of: path.first ?? "").joined(separator: ", "), at: location)
      return ExitStatus.usage
    }
    if let include = command as? RunCommand {
      return await runFile(include.file, relativeTo: location, echo: include.echo ? true : nil, record: include.record)
    }
    if let replay = command as? ReplayCommand {
      return await self.replay(replay.notebook, frozen: replay.frozen, at: location)
    }
    return await execute(command, at: location)
  }

  private func run(quit location: SourceLocation?) -> Int32 {
    quitRequested = true
    return ExitStatus.ok
  }

  /// Set by `quit`/`exit`.
  public private(set) var quitRequested = false

  /// Executes a parsed command as a cancellable task (Ctrl-C cancels it).
  private func execute(_ command: sending any ShellCommand, at location: SourceLocation?) async -> Int32 {
    if command is QuitCommand { return run(quit: location) }
    let session = self.session
    // The parsed command is not Sendable (ArgumentParser's property wrappers); `sending` moves it into its task.
    let task = Task { () -> Int32 in
      do {
        try await command.execute(in: session)
        return ExitStatus.ok
      } catch {
        return Shell.report(error, session: session, at: location)
      }
    }
    Interrupts.shared.setCurrent { task.cancel() }
    let status = await task.value
    Interrupts.shared.setCurrent(nil)
    return status
  }

  /// Prints one line for an error and maps it to an exit status.
  static func report(_ error: any Error, session: Session, at location: SourceLocation?) -> Int32 {
    if let error = error as? ValidationError {
      session.error(error.message, at: location)
      return ExitStatus.usage
    }
    if let error = error as? Grammar.LexError {
      session.error(error.description, at: location)
      return ExitStatus.usage
    }
    // Ctrl-C cancels the command's task: whatever error that surfaces as (a bare CancellationError, or one
    // wrapped in another error's text), the user sees one friendly line, unless the error already explains
    // the interruption itself (exit status 130, e.g. "export #3 interrupted; `export c` resumes …").
    let text = ErrorText.describe(error)
    let interrupted = error is CancellationError || Task.isCancelled
    if let failure = error as? any CohortFailure, failure.exitCode == ExitStatus.interrupted || !interrupted {
      session.error(failure.description, at: location)
      return failure.exitCode
    }
    if interrupted {
      session.error("interrupted (Ctrl-C): the command stopped; the workspace is left consistent", at: location)
      return ExitStatus.interrupted
    }
    session.error(text, at: location)
    return ExitStatus.failed
  }

  private func help(_ path: [String], at location: SourceLocation?) -> Int32 {
    if path == ["--man"] {
      session.out(ManPage.render())
      return ExitStatus.ok
    }
    if path.isEmpty {
      var text = CohortCommands.helpMessage(columns: 100)
      text += "\n\nShell: `help COMMAND` for details; `set format|echo|bail|color VALUE`; `set NAME VALUE` and $NAME;"
      text += " `run FILE` replays a script; Ctrl-R searches history; Tab completes; Ctrl-D or `quit` leaves.\n"
      session.print(text)
      return ExitStatus.ok
    }
    guard let command = CommandTable.command(for: path),
      path.count <= CommandTable.pathLength(path)
    else {
      let hint = nearest(path[0], in: CommandTable.names).map { " — did you mean '\($0)'?" } ?? ""
      session.error("no help for '\(path.joined(separator: " "))'\(hint)", at: location)
      return ExitStatus.usage
    }
    session.print(CohortCommands.helpMessage(for: command, columns: 100))
    return ExitStatus.ok
  }

  // MARK: Scripts

  /// Runs a script's text. Errors print `FILE:LINE: error: …`; with bail on (default) the script stops
  /// at the first error and the status is 3.
  public func runScript(_ text: String, file: String, baseDirectory: String) async -> Int32 {
    var pending = ""
    var pendingStart = 1
    var lineNumber = 0
    var failures = 0
    let previousBase = scriptBase
    let previousDirectory = session.scriptDirectory
    scriptBase = baseDirectory
    session.scriptDirectory = baseDirectory
    defer {
      scriptBase = previousBase
      session.scriptDirectory = previousDirectory
    }
    // CRLF scripts (written on Windows) run as they are: "\r\n" is one Character in Swift, so normalise first.
    let lines = text.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
    for (index, line) in lines.enumerated() {
      lineNumber = index + 1
      if index == lines.count - 1 && line.isEmpty && pending.isEmpty { break }
      if pending.isEmpty { pendingStart = lineNumber }
      pending += (pending.isEmpty ? "" : "\n") + line
      // Complete yet? (checked without expanding: each command expands its variables just before it
      // runs, so `serve --background; server add s $server_url` works on one line)
      guard case .commands = try? Grammar.split(pending, variables: nil) else { continue }
      let source = pending
      pending = ""
      let segments = Grammar.segments(source)
      for segment in segments {
        let location = SourceLocation(file: file, line: pendingStart)
        let words: [String]
        do {
          guard case .commands(let lexed) = try Grammar.split(segment, variables: session.variables),
            let first = lexed.first
          else { continue }
          words = first
        } catch {
          let status = Shell.report(error, session: session, at: location)
          failures += 1
          if session.bail { return stop(status) }
          continue
        }
        let text = segment.trimmingCharacters(in: .whitespaces)
        if session.echo {
          session.print("> " + (segments.count == 1 ? source.trimmingCharacters(in: .whitespaces) : text))
        }
        let status: Int32
        if let frozen = frozenRecord {
          status = await runFrozen(words: words, at: location, record: frozen)
        } else if let recorder = session.recorder {
          session.captured = ""
          status = await run(words: words, at: location)
          let output = session.captured ?? ""
          session.captured = nil
          recorder.commandFinished(
            line: pendingStart, text: text,
            words: words, status: status, output: output, session: session)
        } else {
          status = await run(words: words, at: location)
        }
        if status == ExitStatus.interrupted { return status }
        if status != ExitStatus.ok {
          failures += 1
          if session.bail { return stop(status) }
        }
        if quitRequested { return failures == 0 ? ExitStatus.ok : ExitStatus.failed }
      }
    }
    if !pending.isEmpty {
      session.error("unterminated quote or trailing backslash at end of input", at: SourceLocation(file: file, line: pendingStart))
      return session.bail ? stop(ExitStatus.usage) : ExitStatus.scriptStopped
    }
    return failures == 0 ? ExitStatus.ok : ExitStatus.failed
  }

  private func stop(_ status: Int32) -> Int32 {
    session.note("script stopped at the first error (use --no-bail or `set bail off` to continue past errors)")
    return ExitStatus.scriptStopped
  }

  /// The directory that relative `run FILE` paths are resolved against (the including script's).
  var scriptBase: String?
  /// Set while `replay --frozen` runs.
  var frozenRecord: FrozenReplay?

  /// Runs a script file; `run FILE` inside a script resolves FILE relative to that script.
  public func runFile(
    _ path: String, relativeTo location: SourceLocation? = nil, echo: Bool? = nil, record: Bool = false
  ) async -> Int32 {
    let base = scriptBase ?? FileManager.default.currentDirectoryPath
    let full = path.hasPrefix("/") ? path : URL(fileURLWithPath: base).appendingPathComponent(path).standardizedFileURL.path
    guard session.includeDepth < Shell.maxIncludeDepth else {
      session.error("scripts nested more than \(Shell.maxIncludeDepth) deep (does \(path) run itself?)", at: location)
      return ExitStatus.failed
    }
    guard let data = FileManager.default.contents(atPath: full), let text = String(data: data, encoding: .utf8) else {
      session.error("cannot read script \(full)", at: location)
      return ExitStatus.failed
    }
    session.includeDepth += 1
    let savedEcho = session.echo
    if let echo { session.echo = echo }
    defer {
      session.includeDepth -= 1
      session.echo = savedEcho
    }
    let display = location == nil ? path : relativeDisplay(full)
    let outer = session.recorder
    if record { session.recorder = Recorder(path: RunRecord.path(forNotebook: full), notebook: display, session: session) }
    let status = await runScript(text, file: display, baseDirectory: URL(fileURLWithPath: full).deletingLastPathComponent().path)
    if record, let recorder = session.recorder {
      do {
        try recorder.finish(status: status, session: session)
      } catch {
        session.error("cannot write the run record: \(error)", at: location)
      }
      session.recorder = outer
    }
    // A nested script that stopped makes the including command fail (and bail upward).
    return status
  }

  private func relativeDisplay(_ full: String) -> String {
    let cwd = FileManager.default.currentDirectoryPath + "/"
    return full.hasPrefix(cwd) ? String(full.dropFirst(cwd.count)) : full
  }
}

extension CommandTable {
  /// How many leading words name a command path (e.g. 2 for `server add x y`).
  static func pathLength(_ words: [String]) -> Int { pathWords(words).count }

  static func pathWords(_ words: [String]) -> [String] {
    var candidates = all
    var path: [String] = []
    for word in words {
      guard let next = candidates.first(where: { $0.configuration.commandName == word }) else { break }
      path.append(word)
      candidates = next.configuration.subcommands
    }
    return path
  }
}

// MARK: Shell built-ins

struct SetCommand: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "set", abstract: "Set a shell option (format, echo, bail, color) or a script variable.",
    discussion: "`set format json`, `set echo on`, `set bail off`, `set color off`, `set since 2024-01-01T00:00:00Z` then use $since. `set` alone lists them.")
  @Argument(help: "Option or variable name.") var name: String?
  @Argument(help: "Value.") var value: String?

  @MainActor func execute(in session: Session) async throws {
    guard let name else {
      var rows = [
        ["format", session.format?.rawValue ?? "auto"], ["echo", session.echo ? "on" : "off"],
        ["bail", session.bail ? "on" : "off"], ["color", session.color ? "on" : "off"],
        ["workspace", session.workspace.path],
      ]
      rows += session.variables.keys.sorted().map { ["$" + $0, session.variables[$0] ?? ""] }
      session.emit(Table(columns: ["name", "value"], rows: rows))
      return
    }
    guard let value else { throw ValidationError("`set \(name)` needs a value") }
    func flag() throws -> Bool {
      switch value.lowercased() {
      case "on", "true", "yes", "1": return true
      case "off", "false", "no", "0": return false
      default: throw ValidationError("`set \(name)` takes on or off")
      }
    }
    switch name {
    case "format":
      if value == "auto" {
        session.format = nil
      } else {
        guard let format = OutputFormat(rawValue: value) else {
          throw ValidationError("format must be one of table, plain, json, csv, auto")
        }
        session.format = format
      }
    case "echo": session.echo = try flag()
    case "bail": session.bail = try flag()
    case "color": session.color = try flag()
    default:
      guard name.first.map({ $0.isLetter || $0 == "_" }) == true,
        name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" })
      else {
        throw ValidationError("variable names are letters, digits and '_'")
      }
      session.variables[name] = value
    }
  }
}

struct RunCommand: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "run", abstract: "Run a script of commands (paths relative to the including script).")
  @Argument(help: "Script file (*.cohort).") var file: String
  @Flag(help: "Print each command before its output.") var echo = false
  @Flag(help: "Write a run record (FILE.run.json) beside the script.") var record = false
  @MainActor func execute(in session: Session) async throws {}
}

struct VersionCommand: ShellCommand {
  static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version.")
  @MainActor func execute(in session: Session) async throws { session.print(CohortVersion.line) }
}

struct QuitCommand: ShellCommand {
  static let configuration = CommandConfiguration(commandName: "quit", abstract: "Leave the shell (also `exit`, Ctrl-D).")
  @MainActor func execute(in session: Session) async throws {}
}

struct SleepCommand: ShellCommand, ReplayedFromRecord {
  static let configuration = CommandConfiguration(
    commandName: "sleep", abstract: "Wait a number of seconds (Ctrl-C interrupts), e.g. between steps of a script.")
  @Argument(help: "Seconds (fractions allowed).") var seconds: Double
  func validate() throws {
    guard seconds >= 0, seconds <= 86_400 else { throw ValidationError("seconds must be between 0 and 86400") }
  }
  @MainActor func execute(in session: Session) async throws {
    try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
  }
}

// MARK: Replay

extension Shell {
  /// `replay NOTEBOOK [--frozen]`.
  func replay(_ notebook: String, frozen: Bool, at location: SourceLocation?) async -> Int32 {
    let base = scriptBase ?? FileManager.default.currentDirectoryPath
    let full = notebook.hasPrefix("/") ? notebook : URL(fileURLWithPath: base).appendingPathComponent(notebook).standardizedFileURL.path
    let record: RunRecord
    do {
      record = try RunRecord.load(path: RunRecord.path(forNotebook: full))
    } catch {
      return Shell.report(error, session: session, at: location)
    }
    if frozen {
      if session.workspace.path != record.workspace && session.workspace.location.source != .option {
        session.workspace = Workspace(location: WorkspaceLocation(path: record.workspace, source: .option))
      }
      let frozen = FrozenReplay(record: record)
      frozenRecord = frozen
      defer { frozenRecord = nil }
      let status = await runFile(full, relativeTo: location)
      guard frozen.changedViews > 0 else { return status }
      // Like a live replay's differences: each is named at its line, the replay goes on, and a replay that
      // otherwise succeeded fails, so a reviewer (or CI) cannot take the rows for the recorded ones.
      session.note(
        "frozen replay differs from the record: \(frozen.changedViews) command(s) used a view that changed since the run was recorded")
      return status == ExitStatus.ok ? ExitStatus.failed : status
    }
    // Live replay: run it again, capture each command's output, compare with the record.
    let saved = session.recorder
    let recorder = Recorder(path: NSTemporaryDirectory() + "cohort-replay-\(UUID().uuidString).run.json", notebook: notebook, session: session)
    session.recorder = recorder
    let status = await runFile(full, relativeTo: location)
    session.recorder = saved
    var differences = 0
    for (index, command) in recorder.record.commands.enumerated() {
      guard index < record.commands.count else {
        session.note("line \(command.line): `\(command.text)` was not in the recorded run")
        differences += 1
        continue
      }
      let old = record.commands[index]
      if old.outputSHA256 != command.outputSHA256 || old.status != command.status {
        differences += 1
        session.note("line \(command.line): `\(command.text)` printed something else than in the record (status \(command.status), recorded \(old.status))")
      }
    }
    if record.commands.count > recorder.record.commands.count {
      differences += record.commands.count - recorder.record.commands.count
      session.note("\(record.commands.count - recorder.record.commands.count) recorded command(s) did not run this time")
    }
    session.note(differences == 0 ? "replay matches the record: every command printed the same" : "replay differs from the record in \(differences) command(s)")
    return status == ExitStatus.ok && differences > 0 ? ExitStatus.failed : status
  }

  /// One command of a frozen replay: state-changing commands print what they printed in the recorded run;
  /// analysis commands run against the snapshots that existed at that point.
  func runFrozen(words: [String], at location: SourceLocation?, record: FrozenReplay) async -> Int32 {
    let index = record.takeNext()
    guard index < record.record.commands.count else {
      session.error("this command is not in the run record (the notebook changed since it was recorded)", at: location)
      return ExitStatus.failed
    }
    let recorded = record.record.commands[index]
    if RunRecord.redact(words) != recorded.words {
      session.error("the notebook changed since it was recorded: expected `\(recorded.text)` here", at: location)
      return ExitStatus.failed
    }
    let first = words.first ?? ""
    if stateCommands.contains(first) {
      session.out(recorded.output ?? "")
      if first == "serve" { session.variables.merge(record.variables) { current, _ in current } }
      session.pinnedLatest = recorded.latest
      return recorded.status
    }
    if let recordedHash = recorded.viewSHA256, let used = viewUsed(by: words, session: session), used.sha256 != recordedHash {
      record.noteChangedView()
      let isFile = used.view.hasSuffix(".json") || used.view.contains("/")
      let named = isFile ? "view file \(used.view)" : "view file \(used.path) (saved view \(used.view))"
      session.warn(
        "\(named) changed since the run was recorded (sha256 \(used.sha256.prefix(12))…, recorded \(recordedHash.prefix(12))…): "
          + "the rows reproduced from it come from a different view than the recorded run's", at: location)
    }
    session.pinnedLatest = index > 0 ? record.record.commands[index - 1].latest : [:]
    let status = await run(words: words, at: location)
    session.pinnedLatest = recorded.latest
    return status
  }
}

/// The state of a frozen replay in progress.
final class FrozenReplay: Sendable {
  let record: RunRecord
  private let cursor = Mutex(0)
  private let changed = Mutex(0)
  /// The index of the next recorded step, moving the cursor on.
  func takeNext() -> Int {
    cursor.withLock { next in
      defer { next += 1 }
      return next
    }
  }
  /// Commands whose view definition's SHA-256 differs from the recorded one.
  var changedViews: Int { changed.withLock { $0 } }
  func noteChangedView() { changed.withLock { $0 += 1 } }
  var variables: [String: String] {
    var out = record.variables
    if out["server_url"] == nil, let url = record.servers.first?.baseURL { out["server_url"] = url }
    return out
  }
  init(record: RunRecord) { self.record = record }
}
