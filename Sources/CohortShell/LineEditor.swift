@preconcurrency import CLibEdit
import CCohortSupport
import Foundation

/// The interactive line editor on libedit's readline layer: history persisted after every line
/// (mode 0600, consecutive duplicates dropped, secret-carrying lines never written), Ctrl-R reverse
/// search, Ctrl-L clear screen, Tab completion from a provider.
final class LineEditor {
  let historyPath: String?
  private var lastEntry: String?

  init(historyPath: String?, completer: @escaping @Sendable (_ line: String, _ word: String) -> [String]) {
    self.historyPath = historyPath
    LineEditor.ensureUTF8Locale()
    completionProvider = completer
    rl_readline_name = UnsafePointer(strdup("cohort"))
    rl_catch_signals = 0
    cohort_use_interruptible_getc()
    rl_initialize()
    rl_attempted_completion_function = cohortAttemptCompletion
    rl_completer_word_break_characters = strdup(" \t\n\"'=;")
    _ = cohort_bind_reverse_search()
    // Ctrl-L clears the screen and redraws the prompt and the line being typed (like `clear`).
    _ = rl_parse_and_bind("bind ^L ed-clear-screen")
    stifle_history(2000)
    if let historyPath {
      let dir = URL(fileURLWithPath: historyPath).deletingLastPathComponent().path
      try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
        attributes: [.posixPermissions: 0o700])
      if FileManager.default.fileExists(atPath: historyPath) {
        _ = read_history(historyPath)
        if history_length > 0, let entry = history_get(history_base + history_length - 1), let line = entry.pointee.line {
          lastEntry = String(cString: line)
        }
      }
    }
  }

  /// libedit drops non-ASCII input under the C locale: switch LC_CTYPE to UTF-8.
  static func ensureUTF8Locale() {
    setlocale(LC_ALL, "")
    if let codeset = nl_langinfo(nl_item(CODESET)), String(cString: codeset) != "UTF-8" {
      setlocale(LC_CTYPE, "C.UTF-8")
    }
  }

  /// Reads one line; nil at end of input (Ctrl-D).
  func readLine(prompt: String) -> String? {
    cohort_sigint_clear_editor()
    guard let raw = readline(prompt) else { return nil }
    defer { free(raw) }
    return String(cString: raw)
  }

  /// Adds a logical command to the history and writes the file at once (a crash loses nothing).
  func remember(_ entry: String, carriesSecret: Bool) {
    let trimmed = entry.trimmingCharacters(in: .whitespaces)
    guard !trimmed.isEmpty, !carriesSecret, trimmed != lastEntry else { return }
    add_history(trimmed)
    lastEntry = trimmed
    guard let historyPath else { return }
    let fd = open(historyPath, O_WRONLY | O_CREAT, 0o600)
    if fd >= 0 { close(fd) }
    _ = write_history(historyPath)
    chmod(historyPath, 0o600)
  }

  /// `COHORT_HISTFILE`, else `$XDG_STATE_HOME/cohort/history`, else `~/.local/state/cohort/history`.
  static func historyPath(environment: [String: String]) -> String? {
    if let file = environment["COHORT_HISTFILE"] { return file.isEmpty ? nil : file }
    if let state = environment["XDG_STATE_HOME"], !state.isEmpty { return state + "/cohort/history" }
    guard let home = environment["HOME"], !home.isEmpty else { return nil }
    return home + "/.local/state/cohort/history"
  }
}

// Completion state: the C callbacks cannot capture, so they read these globals (only touched on
// the thread that runs the line editor).
nonisolated(unsafe) private var completionProvider: (@Sendable (String, String) -> [String])?
nonisolated(unsafe) private var completionMatches: [String] = []
nonisolated(unsafe) private var completionIndex = 0

private func cohortAttemptCompletion(
  _ text: UnsafePointer<CChar>?, _ start: Int32, _ end: Int32
) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
  rl_attempted_completion_over = 1
  let word = text.map { String(cString: $0) } ?? ""
  var line = ""
  if let buffer = rl_line_buffer {
    let full = String(cString: buffer)
    line = String(full.utf8.prefix(Int(start))) ?? full
  }
  completionMatches = completionProvider?(line, word) ?? []
  completionIndex = 0
  guard !completionMatches.isEmpty, let text else { return nil }
  return rl_completion_matches(text, cohortCompletionGenerator)
}

private func cohortCompletionGenerator(_ text: UnsafePointer<CChar>?, _ state: Int32) -> UnsafeMutablePointer<CChar>? {
  if state == 0 { completionIndex = 0 }
  guard completionIndex < completionMatches.count else { return nil }
  let match = completionMatches[completionIndex]
  completionIndex += 1
  return strdup(match)
}
