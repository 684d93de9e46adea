import CohortTestSupport
import Foundation
import Testing

@testable import CohortShell

/// One command table: the parser's grammar is the source; completion's options and the README's command table
/// are compared with it, so a command or option added, renamed or removed in one place fails here until the
/// others follow.
@MainActor
@Suite struct CommandCatalogTests {
  /// The README's "## Commands" table: each row's first cell, split into its backticked forms.
  static func readmeForms() throws -> [String] {
    let readme = try String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
    guard let start = readme.range(of: "\n## Commands\n") else { throw TestFailure("README.md has no '## Commands' section") }
    let section = readme[start.upperBound...].prefix { _ in true }
    let end = section.range(of: "\n## ")?.lowerBound ?? section.endIndex
    var forms: [String] = []
    for line in section[..<end].split(separator: "\n") where line.hasPrefix("| `") {
      // The first cell ends at the first " | " outside backticks (cells escape their own pipes as \|).
      var cell = ""
      var inCode = false
      var previous: Character = " "
      for c in line.dropFirst(2) {
        if c == "`" { inCode.toggle() }
        if c == "|" && !inCode && previous != "\\" { break }
        cell.append(c)
        previous = c
      }
      var rest = Substring(cell)
      while let open = rest.firstIndex(of: "`") {
        let after = rest[rest.index(after: open)...]
        guard let close = after.firstIndex(of: "`") else { break }
        forms.append(after[..<close].replacingOccurrences(of: "\\|", with: "|"))
        rest = after[after.index(after: close)...]
      }
    }
    return forms
  }

  /// The command paths a form names (`server list|show` → [server list], [server show]) and its long options.
  static func parse(_ form: String) -> (paths: [[String]], options: [String]) {
    let words = form.split(separator: " ").map(String.init)
    var paths: [[String]] = [[]]
    for word in words {
      guard let first = word.first, first.isLowercase, !word.contains("…") else { break }
      let alternatives = word.split(separator: "|").map(String.init).filter { $0.allSatisfy { $0.isLowercase || $0 == "-" } }
      guard !alternatives.isEmpty else { break }
      paths = paths.flatMap { path in alternatives.map { path + [$0] } }
      // Stop after a top-level command that takes no subcommand.
      if let entry = CommandCatalog.entry(for: paths[0]), !entry.isGroup { break }
    }
    var options: [String] = []
    var scanner = Substring(form)
    while let range = scanner.range(of: "--") {
      let name = scanner[range.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "-" }
      if !name.isEmpty { options.append("--" + name) }
      scanner = scanner[range.upperBound...].dropFirst(name.count)
    }
    return (paths, options)
  }

  @Test("the catalog reads every command and its options from the parser")
  func catalogIsComplete() throws {
    let catalog = try CommandCatalog(CohortCommands.self)
    let paths = catalog.entries.map { $0.path.joined(separator: " ") }
    for expected in ["server add", "cohort set", "export", "view run", "sql", "replay", "advance"] {
      #expect(paths.contains(expected), "\(expected) is missing from the catalog")
    }
    let export = try #require(catalog.entries.first { $0.path == ["export"] })
    for option in ["--incremental", "--since", "--type", "--type-filter", "--resume", "--dry-run"] {
      #expect(export.options.contains(option), "export lacks \(option)")
    }
    #expect(!export.options.contains("--help"))
    #expect(catalog.entries.first { $0.path == ["server"] }?.isGroup == true)
  }

  @Test("completion offers exactly the catalog's options of a command")
  func completionUsesTheCatalog() throws {
    let offered = Set(Completion.options(for: ["cohort", "add"]))
    let entry = try #require(CommandCatalog.entry(for: ["cohort", "add"]))
    #expect(offered == Set(entry.options + ["--help"]))
    #expect(offered.contains("--type-filter") && offered.contains("--server"))
  }

  @Test("the README's command table names every command, and only options the parser knows")
  func readmeTableMatchesTheParser() throws {
    let catalog = CommandCatalog.shared
    let forms = try Self.readmeForms()
    #expect(forms.count > 20, "the README's command table was not found or is nearly empty")
    var documented = Set<String>()
    for form in forms {
      let (paths, options) = Self.parse(form)
      let entries = paths.compactMap { CommandCatalog.entry(for: $0) }
      #expect(!entries.isEmpty && entries.count == paths.count, "README names a command the parser does not have: `\(form)`")
      for path in paths { documented.insert(path.joined(separator: " ")) }
      for option in options {
        #expect(
          entries.contains { $0.options.contains(option) },
          "README: `\(option)` is not an option of \(paths.map { $0.joined(separator: " ") }.joined(separator: "/"))")
      }
    }
    let commands = catalog.entries.filter { !$0.isGroup }.map { $0.path.joined(separator: " ") }
    let missing = commands.filter { !documented.contains($0) }
    #expect(missing.isEmpty, "commands missing from the README's command table: \(missing.joined(separator: ", "))")
  }

  @Test("option values come from the parser's own lists, per command (view run's --format has ndjson; others do not)")
  func optionValuesFromTheParser() throws {
    let h = try Harness()
    let session = h.shell.session
    #expect(Completion.candidates(line: "server add s http://x --auth ", word: "", session: session) == ["bearer", "none", "smart"])
    #expect(Completion.candidates(line: "serve --flavor ", word: "", session: session) == ["netsmart", "standard"])
    #expect(Completion.candidates(line: "view run v c --format ", word: "", session: session).contains("ndjson"))
    #expect(!Completion.candidates(line: "summary c --format ", word: "", session: session).contains("ndjson"))
    #expect(Completion.candidates(line: "summary c --format ", word: "j", session: session) == ["json"])
    #expect(CommandCatalog.entry(for: ["server", "add"])?.values["--kickoff"] == ["get", "post"])
  }


  @Test("replay --frozen replays from the record exactly the commands that change state or show the live workspace")
  func frozenReplaySetComesFromTheTable() {
    #expect(
      stateCommands == ["serve", "advance", "export", "server", "cohort", "watermarks", "history", "status", "snapshots", "sleep"])
    for name in stateCommands { #expect(CommandTable.names.contains(name)) }
  }

}
