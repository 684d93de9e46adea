import ArgumentParser
import CohortKit
import CohortStore
import FHIRBulk
import Foundation

/// Tab completion: commands, subcommands, options, and names from the store.
enum Completion {
  /// Commands whose first argument is a cohort name.
  static let cohortCommands: Set<String> = [
    "export", "summary", "diff", "history", "snapshots", "show", "watermarks", "status",
  ]
  static let cohortSubcommandsTakingName: Set<String> = ["show", "remove", "rename"]

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
      all = values(for: previous, session: session)
    } else if words.count == 1, !CommandTable.subcommands(of: words[0]).isEmpty {
      all = CommandTable.subcommands(of: words[0])
    } else if words.count == 1, cohortCommands.contains(words[0]) {
      all = names(session) { try $0.cohorts().map(\.name) }
    } else if words.count == 2, words[0] == "cohort", cohortSubcommandsTakingName.contains(words[1]) {
      all = names(session) { try $0.cohorts().map(\.name) }
    } else if words.count == 2, words[0] == "server", cohortSubcommandsTakingName.union(["check"]).contains(words[1]) {
      all = names(session) { try $0.servers().map(\.name) }
    } else {
      all = []
    }
    return all.filter { $0.hasPrefix(word) }.sorted()
  }

  static func values(for option: String, session: Session) -> [String] {
    switch option {
    case "--server": return names(session) { try $0.servers().map(\.name) }
    case "--type", "--types": return FHIRResourceTypes.r4.sorted()
    case "--format": return OutputFormat.allCases.map(\.rawValue)
    case "--auth": return ["none", "bearer", "smart"]
    case "--kickoff": return ["get", "post"]
    case "--flavor": return ["standard", "netsmart"]
    case "--alg": return ["RS384", "ES384"]
    default: return []
    }
  }

  static func names(_ session: Session, _ body: (Store) throws -> [String]) -> [String] {
    guard session.workspace.exists, let store = try? session.store(create: false) else { return [] }
    return (try? body(store)) ?? []
  }

  /// Long option names of a command, from ArgumentParser's own description of the command table.
  static func options(for path: [String]) -> [String] {
    guard let command = CommandTable.command(for: path) else { return ["--help"] }
    return OptionNames.cache[ObjectIdentifier(command)] ?? OptionNames.load(command)
  }
}

enum OptionNames {
  nonisolated(unsafe) static var cache: [ObjectIdentifier: [String]] = [:]

  static func load(_ command: any ParsableCommand.Type) -> [String] {
    // The usage line names every option, e.g. "[--type <type> ...] [--since <since>]".
    let usage = command.helpMessage(columns: 10_000)
    var names = Set<String>()
    var scanner = Substring(usage)
    while let range = scanner.range(of: "--") {
      let rest = scanner[range.upperBound...]
      let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "-" }
      if !name.isEmpty { names.insert("--" + name) }
      scanner = rest
    }
    let sorted = names.sorted()
    cache[ObjectIdentifier(command)] = sorted
    return sorted
  }
}
