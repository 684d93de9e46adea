import CohortKit
import CCohortSupport
import Foundation

/// The front end: argv → REPL | script | `-c` | one command; exit codes.
@MainActor
public enum CohortMain {
  public static func main() async -> Never {
    // Everything cohort writes (exports, the store, logs, records) may hold patient data: owner only.
    umask(0o077)
    cohort_tune_allocator()
    let status = await run(arguments: Array(CommandLine.arguments.dropFirst()))
    exit(status)
  }

  static let usage = """
    usage: cohort [--workspace DIR] [--format table|plain|json|csv] [--no-color] [--echo] [--no-bail]
                  [-c 'CMD; CMD…' | run FILE | FILE.cohort | COMMAND [ARGS…]]
    With no command: an interactive shell on a terminal, else commands are read from stdin.
    `cohort help` lists the commands. Exit codes: 0 ok, 1 failed, 2 server/network, 3 script stopped,
    64 usage, 130 interrupted.
    """

  /// Runs the program with `arguments` (without the executable name). Returns the exit status.
  public static func run(arguments: [String]) async -> Int32 {
    var args = arguments[...]
    var workspaceOption: String?
    var format: OutputFormat?
    var color: Bool?
    var echo: Bool?
    var bail = true
    var commandText: String?
    let stderr = FDWriter(fd: 2)
    // Shell completion scripts call back into the binary (see Completion.swift).
    if let first = args.first, ShellCompletion.handles(first) { return ShellCompletion.respond(arguments) }

    while let first = args.first, first.hasPrefix("-") {
      args = args.dropFirst()
      func value() -> String? {
        guard let v = args.first else {
          stderr.write("error: \(first) needs a value\n\(usage)\n")
          return nil
        }
        args = args.dropFirst()
        return v
      }
      switch first {
      case "--workspace", "-w":
        guard let v = value() else { return ExitStatus.usage }
        workspaceOption = v
      case "--format":
        guard let v = value() else { return ExitStatus.usage }
        guard let f = OutputFormat(rawValue: v) else {
          stderr.write("error: --format must be one of table, plain, json, csv\n")
          return ExitStatus.usage
        }
        format = f
      case "--no-color": color = false
      case "--color": color = true
      case "--echo": echo = true
      case "--no-bail": bail = false
      case "-c":
        guard let v = value() else { return ExitStatus.usage }
        commandText = v
      case "--version", "-V":
        FDWriter(fd: 1).write(CohortVersion.line + "\n")
        return ExitStatus.ok
      case "--help", "-h":
        FDWriter(fd: 1).write(usage + "\n")
        return ExitStatus.ok
      default:
        stderr.write("error: unknown option '\(first)'\n\(usage)\n")
        return ExitStatus.usage
      }
    }

    let environment = ProcessInfo.processInfo.environment
    let cwd = FileManager.default.currentDirectoryPath
    let location = Workspace.locate(option: workspaceOption, environment: environment, cwd: cwd)
    let session = Session(workspace: Workspace(location: location), environment: environment, color: color)
    session.format = format
    session.bail = bail
    let shell = Shell(session: session)
    Interrupts.shared.install()
    let status = await front(shell: shell, commandText: commandText, echo: echo, rest: Array(args), cwd: cwd)
    // Servers started with `serve --background` stop with the session (awaited: the session is on the main actor,
    // and nothing here blocks it).
    for server in session.backgroundServers { await server.stop() }
    session.backgroundServers = []
    return status
  }

  /// Runs what the arguments ask for: `-c`, a `.cohort` file, one command, the REPL, or stdin.
  static func front(shell: Shell, commandText: String?, echo: Bool?, rest: [String], cwd: String) async -> Int32 {
    let session = shell.session
    if let commandText {
      session.echo = echo ?? false
      return await shell.runScript(commandText, file: "-c", baseDirectory: cwd)
    }
    if let first = rest.first {
      if first.hasSuffix(".cohort") && rest.count == 1 && !CommandTableNames.isCommand(first) {
        session.echo = echo ?? false
        return await shell.runFile(first)
      }
      session.echo = echo ?? false
      let status = await shell.run(words: rest)
      return status
    }
    if isatty(0) == 1 {
      Interrupts.shared.interactive = true
      session.interactive = true
      session.echo = echo ?? false
      return await Repl(shell: shell).run()
    }
    session.echo = echo ?? false
    var text = ""
    while let line = Swift.readLine(strippingNewline: false) { text += line }
    return await shell.runScript(text, file: "<stdin>", baseDirectory: cwd)
  }
}

enum CommandTableNames {
  static func isCommand(_ word: String) -> Bool { CommandTable.names.contains(word) }
}

/// Lines that carry a secret are never written to the history.
public enum Secrets {
  public static func lineCarriesSecret(_ line: String) -> Bool { Redaction.lineCarriesSecret(line) }
}

/// The interactive loop.
@MainActor
final class Repl {
  let shell: Shell
  var session: Session { shell.session }

  init(shell: Shell) { self.shell = shell }

  func run() async -> Int32 {
    let session = self.session
    let editor = LineEditor(historyPath: LineEditor.historyPath(environment: session.environment)) { line, word in
      // libedit calls back on the thread that called readLine: the main actor's, which the REPL runs on.
      MainActor.assumeIsolated { Completion.candidates(line: line, word: word, session: session) }
    }
    session.note("cohort \(CohortVersion.string) — workspace \(session.workspace.path)\(session.workspace.exists ? "" : " (not created yet)"). Type `help`, Tab to complete, Ctrl-D to leave.")
    var lastStatus = ExitStatus.ok
    while true {
      var text = ""
      var prompt = "cohort> "
      var words: [[String]] = []
      var lexError: (any Error)?
      while true {
        guard let line = editor.readLine(prompt: prompt) else {
          if text.isEmpty {
            session.print("")
            return lastStatus
          }
          break
        }
        text += (text.isEmpty ? "" : "\n") + line
        do {
          switch try Grammar.split(text, variables: session.variables) {
          case .incomplete:
            prompt = "   ...> "
            continue
          case .commands(let commands):
            words = commands
          }
        } catch {
          lexError = error
        }
        break
      }
      editor.remember(text, carriesSecret: Secrets.lineCarriesSecret(text))
      if let lexError {
        lastStatus = Shell.report(lexError, session: session, at: nil)
        continue
      }
      for command in words {
        lastStatus = await shell.run(words: command)
        if shell.quitRequested { return ExitStatus.ok }
      }
    }
  }
}
