import ArgumentParser
import Foundation

/// Every command of the table with its long options, read from ArgumentParser's structured description of the
/// command tree (the `--experimental-dump-help` JSON, produced in-process), not scraped from rendered help.
/// Completion offers these options; a test compares them with the README's command table.
struct CommandCatalog: Sendable {
  struct Entry: Sendable, Equatable {
    /// The words that name the command, e.g. ["server", "add"].
    var path: [String]
    /// Long option and flag names, e.g. ["--auth", "--token-env"] (without `--help`).
    var options: [String]
    var abstract: String
    /// A group of subcommands (e.g. `server`), not a command that runs by itself.
    var isGroup: Bool
    /// The values an option takes, where the parser knows them (`CaseIterable` enums: `--auth`, `--format`, …).
    var values: [String: [String]] = [:]
  }

  var entries: [Entry]

  /// The catalog of `CohortCommands`, built once.
  static let shared: CommandCatalog = (try? CommandCatalog(CohortCommands.self)) ?? CommandCatalog(entries: [])

  static func entry(for path: [String]) -> Entry? { shared.entries.first { $0.path == path } }

  init(entries: [Entry]) { self.entries = entries }

  /// Reads the description ArgumentParser gives of `root` and its subcommands.
  init(_ root: any ParsableCommand.Type) throws {
    let json: String
    do {
      _ = try root.parseAsRoot(["--experimental-dump-help"])
      throw CatalogError.noDescription
    } catch let error as CatalogError {
      throw error
    } catch {
      json = root.fullMessage(for: error)
    }
    let info = try JSONDecoder().decode(ToolInfo.self, from: Data(json.utf8))
    var entries: [Entry] = []
    func walk(_ command: ToolInfo.Command, _ path: [String]) {
      var options: [String] = []
      var values: [String: [String]] = [:]
      for argument in command.arguments ?? [] where argument.kind != "positional" {
        for name in argument.names ?? [] where name.kind == "long" {
          let option = "--" + name.name
          guard !CommandCatalog.builtIn.contains(option) else { continue }
          options.append(option)
          if let all = argument.allValues, !all.isEmpty { values[option] = all }
        }
      }
      let subcommands = (command.subcommands ?? []).filter { $0.commandName != "help" }
      if !path.isEmpty {
        entries.append(
          Entry(path: path, options: options, abstract: command.abstract ?? "", isGroup: !subcommands.isEmpty, values: values))
      }
      for sub in subcommands { walk(sub, path + [sub.commandName]) }
    }
    walk(info.command, [])
    self.entries = entries
  }

  enum CatalogError: Error { case noDescription }

  /// Options ArgumentParser adds to every command.
  static let builtIn: Set<String> = ["--help", "--version", "--experimental-dump-help"]

  /// The subset of ArgumentParser's ToolInfoV0 the catalog reads.
  private struct ToolInfo: Decodable {
    struct Name: Decodable {
      var kind: String
      var name: String
    }
    struct Argument: Decodable {
      var kind: String
      var names: [Name]?
      var allValues: [String]?
    }
    struct Command: Decodable {
      var commandName: String
      var abstract: String?
      var arguments: [Argument]?
      var subcommands: [Command]?
    }
    var command: Command
  }
}
