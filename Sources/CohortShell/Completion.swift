import ArgumentParser
import CohortKit
import Foundation
import Synchronization

/// Tab completion: commands, subcommands, options, and names from the store.
@MainActor
enum Completion {
  /// Commands whose first argument is a cohort name.
  static let cohortCommands: Set<String> = [
    "export", "summary", "diff", "history", "snapshots", "show", "watermarks", "status",
  ]
  static let cohortSubcommandsTakingName: Set<String> = ["show", "remove", "rename"]
  /// `view run|show|materialize|diff NAME`: a saved view's name; then (but for show) a cohort.
  static let viewSubcommandsTakingName: Set<String> = ["run", "show", "materialize", "diff"]
  static let viewSubcommandsTakingCohort: Set<String> = ["run", "materialize", "diff"]

  static func candidates(line: String, word: String, session: Session) -> [String] {
    let words = (try? Grammar.split(line)).flatMap { result -> [String]? in
      if case .commands(let commands) = result { return commands.last ?? [] }
      return nil
    } ?? line.split(separator: " ").map(String.init)
    let all: [String]
    if words.isEmpty {
      all = CommandTable.names
    } else if word.hasPrefix("-") {
      all = options(for: CommandTable.pathWords(words))
    } else if let previous = words.last, previous.hasPrefix("--") {
      let option = previous.hasSuffix("=") ? String(previous.dropLast()) : previous
      if listOptions.contains(option) { return commaList(word, from: values(for: option, path: words, session: session)) }
      all = values(for: option, path: words, session: session)
    } else if words.count == 1, !CommandTable.subcommands(of: words[0]).isEmpty {
      all = CommandTable.subcommands(of: words[0])
    } else if words.count == 1, cohortCommands.contains(words[0]) {
      all = names(session) { try $0.cohorts().map(\.name) }
    } else if words.count == 2, words[0] == "cohort", cohortSubcommandsTakingName.contains(words[1]) {
      all = names(session) { try $0.cohorts().map(\.name) }
    } else if words.count == 2, words[0] == "view", viewSubcommandsTakingName.contains(words[1]) {
      all = SavedViews(workspace: session.workspace).names()
    } else if words.count == 3, words[0] == "view", viewSubcommandsTakingCohort.contains(words[1]) {
      all = names(session) { try $0.cohorts().map(\.name) }
    } else if words.count == 1, words[0] == "sql" {
      all = names(session) { try $0.cohorts().map(\.name) }
    } else if words.count == 2, words[0] == "server", cohortSubcommandsTakingName.union(["check", "set"]).contains(words[1]) {
      all = names(session) { try $0.servers().map(\.name) }
    } else {
      all = []
    }
    return all.filter { $0.hasPrefix(word) }.sorted()
  }

  /// Values of an option: the parser's own list where it has one (`CaseIterable` arguments, from the command
  /// catalog), else names from the workspace or the R4 resource types.
  static func values(for option: String, path: [String] = [], session: Session) -> [String] {
    if let known = CommandCatalog.entry(for: CommandTable.pathWords(path))?.values[option] { return known }
    switch option {
    case "--server": return names(session) { try $0.servers().map(\.name) }
    case "--type", "--types": return ResourceTypes.r4
    case "--format": return OutputFormat.allCases.map(\.rawValue)
    case "--alg": return ["RS384", "ES384"]
    default: return []
    }
  }

  /// Options whose value is a comma-separated list (`--type Patient,Cond<Tab>`).
  static let listOptions: Set<String> = ["--type", "--types"]

  /// Completes the last item of a comma-separated list: `Patient,Cond` → `Patient,Condition`
  /// (items already in the list are not offered again).
  nonisolated static func commaList(_ word: String, from values: [String]) -> [String] {
    let parts = word.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    let last = parts.last ?? ""
    let head = parts.dropLast()
    let prefix = head.isEmpty ? "" : head.joined(separator: ",") + ","
    let taken = Set(head)
    return values.filter { $0.hasPrefix(last) && !taken.contains($0) }.sorted().map { prefix + $0 }
  }

  static func names(_ session: Session, _ body: (Workspace) throws -> [String]) -> [String] {
    guard session.workspace.exists, let kit = try? session.open(create: false) else { return [] }
    return (try? body(kit)) ?? []
  }

  /// Long option names of a command, from the command catalog (ArgumentParser's own description of the table).
  static func options(for path: [String]) -> [String] {
    guard let entry = CommandCatalog.entry(for: CommandTable.pathWords(path)) else { return ["--help"] }
    return entry.options + ["--help"]
  }
}

// MARK: Completion outside the shell (bash, zsh, fish)

/// `cohort --generate-completion-script bash|zsh|fish` prints ArgumentParser's script for the command table;
/// the script calls `cohort ---completion …` back for names that live in the workspace (servers, cohorts,
/// resource types), which ArgumentParser routes to the `CompletionKind`s below.
enum ShellCompletion {
  static func handles(_ argument: String) -> Bool {
    argument == "---completion" || argument.hasPrefix("--generate-completion-script")
  }

  /// Answers a completion request or prints a completion script. Returns the exit status.
  static func respond(_ arguments: [String]) -> Int32 {
    do {
      _ = try CohortCommands.parseAsRoot(arguments)
      FDWriter(fd: 2).write("error: not a completion request\n")
      return ExitStatus.usage
    } catch {
      let code = CohortCommands.exitCode(for: error)
      let text = CohortCommands.fullMessage(for: error)
      let ok = code == .success
      FDWriter(fd: ok ? 1 : 2).write(text.isEmpty || text.hasSuffix("\n") ? text : text + "\n")
      return ok ? ExitStatus.ok : ExitStatus.usage
    }
  }

  /// The workspace a completion request refers to: `--workspace DIR`/`-w DIR` on the line being completed,
  /// else `COHORT_WORKSPACE`, else the nearest `Cohorts/` folder (as for any command).
  static func workspace(words: [String]) -> Workspace {
    var option: String?
    for (index, word) in words.enumerated() where index + 1 < words.count && (word == "--workspace" || word == "-w") {
      option = unquote(words[index + 1])
    }
    let location = Workspace.locate(
      option: option, environment: ProcessInfo.processInfo.environment, cwd: FileManager.default.currentDirectoryPath)
    return Workspace(location: location)
  }

  static func unquote(_ word: String) -> String {
    var text = word
    if text.count >= 2, let first = text.first, first == "'" || first == "\"", text.last == first {
      text = String(text.dropFirst().dropLast())
    }
    return text.replacingOccurrences(of: "\\ ", with: " ")
  }

  /// Names from the workspace's store (nothing when there is no workspace yet; never creates one).
  static func names(words: [String], prefix: String, _ body: (Workspace) throws -> [String]) -> [String] {
    let workspace = workspace(words: words)
    guard workspace.exists, let kit = try? workspace.open(create: false) else { return [] }
    return ((try? body(kit)) ?? []).filter { $0.hasPrefix(prefix) }.sorted()
  }
}

extension CompletionKind {
  /// Cohort names of the current workspace.
  static var cohortName: CompletionKind {
    .custom { words, _, prefix in ShellCompletion.names(words: words, prefix: prefix) { try $0.cohorts().map(\.name) } }
  }

  /// Server names of the current workspace.
  static var serverName: CompletionKind {
    .custom { words, _, prefix in ShellCompletion.names(words: words, prefix: prefix) { try $0.servers().map(\.name) } }
  }

  /// FHIR R4 resource types; after a comma, the next item of the list (`Patient,Cond` → `Patient,Condition`).
  static var resourceTypes: CompletionKind {
    .custom { _, _, prefix in Completion.commaList(prefix, from: ResourceTypes.r4) }
  }
}
