import CohortTestSupport
import CohortKit
import Foundation
import Testing

@testable import CohortShell

/// Completion outside the shell: ArgumentParser's bash/zsh/fish scripts, whose dynamic parts call back into
/// the binary for names from the workspace; and completion inside it after a comma.
@MainActor
@Suite struct ShellCompletionTests {
  nonisolated static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
  nonisolated static var bash: String? { ["/bin/bash", "/usr/bin/bash"].first { FileManager.default.isExecutableFile(atPath: $0) } }

  /// A workspace made by the built binary, as a user would.
  static func fixture() throws -> String {
    let dir = try temporaryDirectory()
    let made = try Binary.run(
      [
        "--workspace", dir + "/Cohorts", "-c",
        "server add prod https://fhir.example.org/r4; server add staging https://staging.example.org/r4; "
          + "cohort add diabetes-patients --server prod --group g1; cohort add dialysis --server prod --group g2; "
          + "cohort add copd --server staging --group g3",
      ], cwd: dir)
    #expect(made.status == 0, "\(made.stderr)")
    return dir
  }

  /// Runs the bash completion function of `script` on `line` (completing its last word) and returns COMPREPLY.
  /// `binDir`: where the `cohort` the script calls back is (default: the debug build).
  nonisolated static func complete(
    _ line: String, script: String, cwd: String, environment: [String: String] = [:], binDir: String? = nil
  ) throws -> [String] {
    var words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
    if line.hasSuffix(" ") { words.append("") }
    let quoted = words.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
    let program = """
      source '\(script)'
      COMP_LINE='\(line)'; COMP_POINT=${#COMP_LINE}
      COMP_WORDS=(\(quoted.joined(separator: " "))); COMP_CWORD=\(words.count - 1)
      _cohort cohort \(quoted.last!) \(words.count > 1 ? quoted[words.count - 2] : "''")
      printf '%s\\n' "${COMPREPLY[@]}"
      """
    let process = Process()
    process.executableURL = URL(fileURLWithPath: bash!)
    process.arguments = ["--norc", "--noprofile", "-c", program]
    process.currentDirectoryURL = URL(fileURLWithPath: cwd)
    var env = ProcessInfo.processInfo.environment
    let bin = binDir ?? URL(fileURLWithPath: Binary.path).deletingLastPathComponent().path
    env["PATH"] = bin + ":" + (env["PATH"] ?? "/usr/bin:/bin")
    env["COHORT_WORKSPACE"] = nil
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
      .filter { !$0.isEmpty }
  }

  @Test(.enabled(if: bash != nil || runningInCI, "bash is not installed"))
  func bashCompletesCommandsAndNamesFromTheWorkspace() throws {
    let dir = try Self.fixture()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let generated = try Binary.run(["--generate-completion-script", "bash"], cwd: dir)
    #expect(generated.status == 0)
    let script = dir + "/cohort.bash"
    try generated.stdout.write(toFile: script, atomically: true, encoding: .utf8)
    let env = ["COHORT_WORKSPACE": dir + "/Cohorts"]

    #expect(try Self.complete("cohort ex", script: script, cwd: dir).contains("export"))
    #expect(try Self.complete("cohort history di", script: script, cwd: dir, environment: env) == ["diabetes-patients", "dialysis"])
    #expect(try Self.complete("cohort summary ", script: script, cwd: dir, environment: env) == ["copd", "diabetes-patients", "dialysis"])
    #expect(try Self.complete("cohort cohort show c", script: script, cwd: dir, environment: env) == ["copd"])
    #expect(try Self.complete("cohort server show st", script: script, cwd: dir, environment: env) == ["staging"])
    #expect(try Self.complete("cohort cohort add x --server p", script: script, cwd: dir, environment: env) == ["prod"])
    #expect(try Self.complete("cohort report d", script: script, cwd: dir, environment: env) == ["diabetes-patients", "dialysis"])
    // After a comma, the next item of the list.
    #expect(try Self.complete("cohort diff copd --type Patient,Cond", script: script, cwd: dir, environment: env) == ["Patient,Condition"])
    // The workspace found from the current directory (its Cohorts/ folder), as for any command.
    #expect(try Self.complete("cohort history co", script: script, cwd: dir) == ["copd"])
    // No workspace: nothing to offer, and none is created.
    let empty = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: empty) }
    #expect(try Self.complete("cohort history ", script: script, cwd: empty) == [])
    #expect(!FileManager.default.fileExists(atPath: empty + "/Cohorts"))
  }

  @Test func completionScriptsForEveryShellCallBackIntoTheBinary() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for shell in ["bash", "zsh", "fish"] {
      let result = try Binary.run(["--generate-completion-script", shell], cwd: dir)
      #expect(result.status == 0, "\(shell): \(result.stderr)")
      #expect(result.stdout.contains("---completion"), "\(shell) script has no dynamic completion")
      #expect(result.stdout.contains("export") && result.stdout.contains("report"))
    }
  }

  @Test func committedCompletionScriptsMatchTheCommandTable() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for (shell, file) in [("bash", "cohort.bash"), ("zsh", "_cohort"), ("fish", "cohort.fish")] {
      let generated = try Binary.run(["--generate-completion-script", shell], cwd: dir).stdout
      let committed = try String(contentsOfFile: Self.root.appendingPathComponent("Scripts/completion/" + file).path, encoding: .utf8)
      #expect(committed == generated, "Scripts/completion/\(file) is stale: run `make completion`")
    }
  }

  // MARK: Inside the shell

  @Test func tabAfterACommaCompletesTheNextResourceType() throws {
    let h = try Harness()
    let session = h.shell.session
    #expect(Completion.candidates(line: "diff c --type ", word: "Patient,Cond", session: session) == ["Patient,Condition"])
    let types = Completion.values(for: "--type", session: session)
    let enc = types.filter { $0.hasPrefix("Enc") }
    #expect(enc.contains("Encounter"))
    #expect(Completion.candidates(line: "export c --type=", word: "Patient,Observation,Enc", session: session)
      == enc.map { "Patient,Observation," + $0 })
    // Types already in the list are not offered again.
    #expect(!Completion.candidates(line: "export c --type ", word: "Patient,", session: session).contains("Patient,Patient"))
    #expect(Completion.candidates(line: "export c --type ", word: "Patient,", session: session).contains("Patient,Observation"))
    // Without a comma, as before.
    #expect(Completion.candidates(line: "diff c --type ", word: "Cond", session: session) == ["Condition"])
  }

  @Test func clearIsACommandThatLeavesPipedOutputAlone() async throws {
    let h = try Harness()
    #expect(try await h.run("clear") == 0)
    #expect(h.stdout.isEmpty && h.stderr.isEmpty)
    #expect(Completion.candidates(line: "", word: "cl", session: h.shell.session) == ["clear"])
  }
}

/// Ctrl-C: whatever error a cancelled command surfaces, the user reads one friendly line, never a raw
/// `CancellationError()`.
@MainActor
@Suite struct InterruptionMessageTests {
  /// Reports `error` from inside a task that was cancelled (as Ctrl-C does).
  static func reportCancelled(_ error: any Error & Sendable, session: Session) async -> Int32 {
    let task = Task { () -> Int32 in
      try? await Task.sleep(for: .seconds(3600))  // returns at once: the task is cancelled
      return Shell.report(error, session: session, at: nil)
    }
    task.cancel()
    return await task.value
  }

  @Test func aBareCancellationIsAFriendlyLine() async throws {
    let h = try Harness()
    #expect(await Self.reportCancelled(CancellationError(), session: h.shell.session) == ExitStatus.interrupted)
    #expect(h.stderr == "error: interrupted (Ctrl-C): the command stopped; the workspace is left consistent\n")
  }

  @Test func aCancellationWrappedInAnotherErrorIsNotPrintedRaw() async throws {
    let h = try Harness()
    let status = await Self.reportCancelled(KitError.failed("cannot start the built-in server: CancellationError()"), session: h.shell.session)
    #expect(status == ExitStatus.interrupted)
    #expect(!h.stderr.contains("CancellationError"))
    #expect(h.stderr.contains("interrupted (Ctrl-C)"))
  }

  @Test func anErrorThatExplainsTheInterruptionKeepsItsOwnWords() async throws {
    let h = try Harness()
    let status = await Self.reportCancelled(ExportError.interrupted(exportSeq: 3, cohort: "dm"), session: h.shell.session)
    #expect(status == ExitStatus.interrupted)
    #expect(h.stderr.contains("export #3 interrupted; `export dm` resumes the same server job"))
  }

  @Test func otherErrorsAreUnchanged() async throws {
    let h = try Harness()
    #expect(Shell.report(KitError.failed("no such thing"), session: h.shell.session, at: nil) == ExitStatus.failed)
    #expect(h.stderr == "error: no such thing\n")
  }
}

/// The same, typed into the interactive shell under a pseudo-terminal (runs in the serial phase of
/// `make test`: its name matches `TerminalTests`).
@Suite(.serialized, .enabled(if: Tmux.available || runningInCI, "tmux is not installed (apt-get install tmux)"))
struct ShellCompletionTerminalTests {
  @Test func tabAfterACommaAndCtrlLAndClear() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = try Binary.run(["-c", "server add prod https://x/r4; cohort add copd --server prod --group g1"], cwd: dir)
    let tmux = try Tmux(cwd: dir, command: "\(Binary.path) --workspace \(dir)/Cohorts")
    defer { tmux.kill() }
    try tmux.waitFor { $0.contains("cohort>") }

    // Tab after a comma completes the next type of the list.
    tmux.send(literal: "diff copd --type Patient,Cond")
    tmux.send(keys: "Tab")
    try tmux.waitFor { $0.contains("cohort> diff copd --type Patient,Condition") }
    tmux.send(keys: "C-u")
    try tmux.waitFor { !$0.contains("Patient,Condition") }

    // Ctrl-L clears the screen and keeps the line being typed.
    tmux.send(literal: "server list")
    tmux.send(keys: "Enter")
    try tmux.waitFor { $0.contains("https://x/r4") }
    tmux.send(literal: "vers")
    tmux.send(keys: "C-l")
    try waitForScreen(tmux) { !$0.contains("https://x/r4") && $0.hasPrefix("cohort> vers") }
    tmux.send(keys: "C-u")

    // `clear` does the same as a command.
    tmux.send(literal: "server list")
    tmux.send(keys: "Enter")
    try tmux.waitFor { $0.contains("https://x/r4") }
    tmux.send(literal: "clear")
    tmux.send(keys: "Enter")
    try waitForScreen(tmux) { !$0.contains("https://x/r4") && $0.hasPrefix("cohort>") }
    #expect(!tmux.capture().contains("unknown command"))
  }

  /// Like `Tmux.waitFor`, on the visible screen only (a cleared screen may move into tmux's scrollback).
  func waitForScreen(_ tmux: Tmux, timeout: TimeInterval = 15, _ predicate: (String) -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    func screen() -> String { tmux.tmux(["capture-pane", "-p", "-t", "t"]) }
    while Date() < deadline {
      if predicate(screen()) { return }
      Thread.sleep(forTimeInterval: 0.1)
    }
    Issue.record("timed out; the screen was:\n\(screen())")
    throw FixtureError(message: "timed out waiting for the screen")
  }
}
