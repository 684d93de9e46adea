import ArgumentParser
import Foundation

/// `cohort help --man`: the man page (roff, man(7) macros) generated from the command table, through
/// ArgumentParser's own description of it (the `--experimental-dump-help` JSON), so it always lists the same
/// commands, arguments and options as `help`. `make install` writes it to share/man/man1/cohort.1.
enum ManPage {
  /// One command of the table as ArgumentParser describes it.
  struct Command {
    var path: [String]
    var abstract: String
    var discussion: String
    var arguments: [Argument]
    var subcommands: [Command]
  }

  struct Argument {
    var kind: String  // positional, option, flag
    var names: [String]  // --type, -c
    var valueName: String?
    var abstract: String
    var isOptional: Bool
    var isRepeating: Bool
    var defaultValue: String?
  }

  /// The command table (ArgumentParser's ToolInfo JSON, parsed).
  static func table() -> Command? {
    let json: String
    do {
      _ = try CohortCommands.parseAsRoot(["--experimental-dump-help"])
      return nil
    } catch {
      json = CohortCommands.fullMessage(for: error)
    }
    guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
      let root = object["command"] as? [String: Any]
    else { return nil }
    return command(root, path: [])
  }

  /// `path`: the words naming this command ([] for the root).
  private static func command(_ object: [String: Any], path: [String]) -> Command {
    let arguments = (object["arguments"] as? [[String: Any]] ?? []).compactMap { a -> Argument? in
      guard a["shouldDisplay"] as? Bool ?? true else { return nil }
      let names = (a["names"] as? [[String: Any]] ?? []).compactMap { n -> String? in
        guard let text = n["name"] as? String else { return nil }
        switch n["kind"] as? String {
        case "long": return "--" + text
        case "short": return "-" + text
        default: return "-" + text
        }
      }
      // ArgumentParser's own --help/--version are described once, in OPTIONS.
      if names.contains("--help") || names.contains("--version") { return nil }
      return Argument(
        kind: a["kind"] as? String ?? "option", names: names, valueName: a["valueName"] as? String,
        abstract: a["abstract"] as? String ?? "", isOptional: a["isOptional"] as? Bool ?? false,
        isRepeating: a["isRepeating"] as? Bool ?? false, defaultValue: a["defaultValue"] as? String)
    }
    let subcommands = (object["subcommands"] as? [[String: Any]] ?? []).filter { $0["shouldDisplay"] as? Bool ?? true }
      .map { command($0, path: path + [$0["commandName"] as? String ?? ""]) }
    return Command(
      path: path, abstract: object["abstract"] as? String ?? "", discussion: object["discussion"] as? String ?? "",
      arguments: arguments, subcommands: subcommands)
  }

  /// Every runnable command path (`server add`, `export`, …), in table order.
  static func commandPaths() -> [String] {
    guard let root = table() else { return [] }
    var out: [String] = []
    func walk(_ c: Command) {
      if !c.path.isEmpty { out.append(c.path.joined(separator: " ")) }
      c.subcommands.forEach(walk)
    }
    walk(root)
    return out
  }

  /// The whole page.
  static func render() -> String {
    var page = Roff()
    page.line(".TH COHORT 1 \"\" \"cohort \(CohortVersion.string)\" \"User Commands\"")
    page.section("NAME")
    page.text("cohort \\- pull patient cohorts out of FHIR servers with Bulk Data $export, and keep their history", raw: true)
    page.section("SYNOPSIS")
    page.line(".B cohort")
    page.text("[\\fB\\-\\-workspace\\fR \\fIDIR\\fR] [\\fB\\-\\-format\\fR \\fItable|plain|json|csv\\fR] [\\fB\\-\\-no\\-color\\fR|\\fB\\-\\-color\\fR] [\\fB\\-\\-echo\\fR] [\\fB\\-\\-no\\-bail\\fR]", raw: true)
    page.text("[\\fB\\-c\\fR \\fI'CMD; CMD...'\\fR | \\fBrun\\fR \\fIFILE\\fR | \\fIFILE\\fR.cohort | \\fICOMMAND\\fR [\\fIARGS\\fR...]]", raw: true)
    page.section("DESCRIPTION")
    page.text(
      "cohort names FHIR servers and patient cohorts (a server's Group), exports them with the FHIR Bulk Data "
        + "$export operation (full or incremental with _since), keeps every export as a snapshot in a workspace "
        + "(a folder with an SQLite index and the NDJSON files), and answers questions about them: what changed, "
        + "who joined or left, what a resource looked like at a snapshot.")
    page.paragraph()
    page.text(
      "With no command, cohort starts an interactive shell on a terminal (history, Ctrl-R, Tab completion; "
        + "Ctrl-C stops the running command), or reads commands from standard input. The same commands work as "
        + "arguments, with -c, in scripts (*.cohort, one command per line, # comments, $NAME variables) and in the shell.")
    page.section("GLOBAL OPTIONS")
    let globals: [(String, String)] = [
      ("\\fB\\-w\\fR, \\fB\\-\\-workspace\\fR \\fIDIR\\fR", "The workspace folder (default: $COHORT_WORKSPACE, else the nearest Cohorts/ folder upwards, else ./Cohorts)."),
      ("\\fB\\-\\-format\\fR \\fItable|plain|json|csv\\fR", "Output format of results (default: a table on a terminal, plain lines when piped)."),
      ("\\fB\\-\\-color\\fR, \\fB\\-\\-no\\-color\\fR", "Force colour and charts on or off (default: on for a terminal unless NO_COLOR is set)."),
      ("\\fB\\-\\-echo\\fR", "Print each command of a script before its output."),
      ("\\fB\\-\\-no\\-bail\\fR", "Go on after a failing command of a script (default: stop with status 3)."),
      ("\\fB\\-c\\fR \\fICOMMANDS\\fR", "Run these commands (separated by ; or newlines) and exit."),
      ("\\fB\\-V\\fR, \\fB\\-\\-version\\fR", "Print the version and the git commit it was built from."),
      ("\\fB\\-h\\fR, \\fB\\-\\-help\\fR", "Print the usage; \\fBcohort help\\fR lists the commands, \\fBcohort help\\fR \\fICOMMAND\\fR explains one."),
    ]
    for (tag, text) in globals { page.item(tag, text) }
    page.section("COMMANDS")
    if let root = table() {
      func walk(_ c: Command) {
        let path = c.path
        if !path.isEmpty {
          if c.subcommands.isEmpty {
            page.subsection(path.joined(separator: " "))
            page.line(synopsis(path, c.arguments))
            page.paragraph()
            page.text(c.abstract)
            if !c.discussion.isEmpty {
              page.paragraph()
              page.text(c.discussion)
            }
            for a in c.arguments { page.item(tag(a), description(a)) }
          } else {
            page.subsection(path.joined(separator: " ") + " " + c.subcommands.map { $0.path.last ?? "" }.joined(separator: "|"))
            page.text(c.abstract)
          }
        }
        c.subcommands.forEach(walk)
      }
      walk(root)
    }
    page.section("ENVIRONMENT")
    page.item("\\fBCOHORT_WORKSPACE\\fR", "The workspace folder when \\-\\-workspace is not given.")
    page.item("\\fBCOHORT_HISTFILE\\fR", "The shell's history file (empty: no history file). Default: $XDG_STATE_HOME/cohort/history or ~/.local/state/cohort/history.")
    page.item("\\fBNO_COLOR\\fR", "When set and not empty: no colour and no charts (unless \\-\\-color).")
    page.item("\\fBTERM\\fR", "dumb: no colour, no progress line.")
    page.item("\\fBCOHORT_VIEW_WORKERS\\fR", "Threads that evaluate a view (default: the cores, at most 8).")
    page.item("\\fBCOHORT_SQLITE_CACHE_KIB\\fR", "SQLite's page cache per connection in KiB (default 2048; it also bounds each of the sorter's runs).")
    page.item("\\fBCOHORT_SQLITE_SORTER_THREADS\\fR", "Helper threads of SQLite's sorter during a commit (default 1; 0 sorts on the committing thread).")
    page.item("\\fBMALLOC_MMAP_THRESHOLD_\\fR, \\fBMALLOC_TRIM_THRESHOLD_\\fR, \\fBMALLOC_ARENA_MAX\\fR, \\fBGLIBC_TUNABLES\\fR", "When set, glibc's own settings replace cohort's (mmap threshold 128 KiB, trim 256 KiB, 2 arenas).")
    page.paragraph()
    page.text("Servers registered with --auth bearer read the token from the environment variable or file named at registration; tokens are never stored.")
    page.section("FILES")
    page.item("\\fIWORKSPACE\\fR/cohort.sqlite", "The index: servers, cohorts, exports, watermarks, resource versions.")
    page.item("\\fIWORKSPACE\\fR/\\fICOHORT\\fR/\\fINNNN\\fR/", "One folder per export: manifest.json, the NDJSON files, log.ndjson.")
    page.item("\\fIWORKSPACE\\fR/\\fICOHORT\\fR/report.html", "Written by \\fBreport\\fR \\fICOHORT\\fR.")
    page.section("EXIT STATUS")
    page.text("0 ok, 1 command failed, 2 server or network error, 3 script stopped at an error, 64 usage error, 130 interrupted.")
    page.section("EXAMPLES")
    page.example("cohort serve \\-\\-background; see `cohort run Notebooks/quickstart.cohort`")
    page.example("cohort server add demo https://fhir.example.org/r4")
    page.example("cohort cohort add dm \\-\\-server demo \\-\\-group diabetes\\-patients")
    page.example("cohort export dm; cohort export dm \\-\\-incremental; cohort diff dm")
    page.example("cohort report dm \\-\\-open")
    page.section("SEE ALSO")
    page.text("The README and docs/architecture.md in the source tree; the FHIR Bulk Data Access IG (https://hl7.org/fhir/uv/bulkdata/).")
    return Roff.asciiOnly(page.text)
  }

  private static func synopsis(_ path: [String], _ arguments: [Argument]) -> String {
    var parts = [".B cohort " + path.joined(separator: " ")]
    var rest: [String] = []
    for a in arguments {
      var text: String
      if a.kind == "positional" {
        text = "\\fI" + Roff.escape((a.valueName ?? "value").uppercased()) + "\\fR" + (a.isRepeating ? "..." : "")
      } else {
        text = "\\fB" + Roff.escape(a.names.first { $0.hasPrefix("--") } ?? a.names.first ?? "") + "\\fR"
        if a.kind == "option" { text += " \\fI" + Roff.escape(a.valueName ?? "value") + "\\fR" }
      }
      rest.append(a.isOptional || a.kind == "flag" ? "[" + text + "]" : text)
    }
    if !rest.isEmpty { parts.append(rest.joined(separator: " ")) }
    return parts.joined(separator: "\n")
  }

  private static func tag(_ a: Argument) -> String {
    if a.kind == "positional" { return "\\fI" + Roff.escape((a.valueName ?? "value").uppercased()) + "\\fR" }
    var text = a.names.map { "\\fB" + Roff.escape($0) + "\\fR" }.joined(separator: ", ")
    if a.kind == "option" { text += " \\fI" + Roff.escape(a.valueName ?? "value") + "\\fR" }
    return text
  }

  private static func description(_ a: Argument) -> String {
    var text = Roff.escape(a.abstract)
    if let value = a.defaultValue, !value.isEmpty, a.kind != "flag" { text += " (default: " + Roff.escape(value) + ")" }
    if a.isRepeating && a.kind == "option" && !a.abstract.lowercased().contains("repeat") { text += " Repeatable." }
    return text
  }
}

/// A small roff writer: escapes text and keeps every macro at the start of a line.
struct Roff {
  private(set) var text = ""

  /// Escapes backslashes and hyphens, and text that would start a line with a control character.
  static func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "\\", with: "\\e").replacingOccurrences(of: "-", with: "\\-")
  }

  mutating func line(_ l: String) { text += l + "\n" }

  /// troff reads bytes, not UTF-8: every non-ASCII character becomes a groff named glyph `\[uXXXX]`.
  static func asciiOnly(_ s: String) -> String {
    var out = ""
    for scalar in s.unicodeScalars {
      if scalar.isASCII { out.unicodeScalars.append(scalar) } else { out += "\\[u" + String(format: "%04X", scalar.value) + "]" }
    }
    return out
  }

  /// Text: escaped unless `raw`; every line guarded with \& so that no line starts with '.' or '\''.
  mutating func text(_ s: String, raw: Bool = false) {
    for l in s.split(separator: "\n", omittingEmptySubsequences: false) {
      let body = raw ? String(l) : Roff.escape(String(l))
      if body.isEmpty { line(".PP") } else { line((body.hasPrefix(".") || body.hasPrefix("'") ? "\\&" : "") + body) }
    }
  }

  mutating func section(_ title: String) { line(".SH \"\(title)\"") }
  mutating func subsection(_ title: String) { line(".SS \"\(title)\"") }
  mutating func paragraph() { line(".PP") }

  mutating func item(_ tag: String, _ description: String) {
    line(".TP")
    line(tag)
    text(description, raw: true)
  }

  mutating func example(_ command: String) {
    line(".PP")
    line(".RS 4")
    line("\\fB" + command.replacingOccurrences(of: "`", with: "") + "\\fR")
    line(".RE")
  }
}
