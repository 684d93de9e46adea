import CohortTestSupport
import BulkServer
import Foundation
import Testing

/// The interactive shell driven through a real pseudo-terminal (tmux send-keys / capture-pane).
@Suite(.serialized, .enabled(if: Tmux.available || runningInCI, "tmux is not installed (apt-get install tmux)"))
struct TerminalTests {
  @Test func typingCompletionHistoryAndInterrupts() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = try Binary.run(["-c", "server add prod https://x/r4; cohort add diabetes-patients --server prod --group g1"], cwd: dir)
    let tmux = try Tmux(cwd: dir, command: "\(Binary.path) --workspace \(dir)/Cohorts")
    defer { tmux.kill() }
    try tmux.waitFor { $0.contains("cohort>") }

    // Typing a command runs it.
    tmux.send(literal: "server list")
    tmux.send(keys: "Enter")
    try tmux.waitFor { $0.contains("https://x/r4") }

    // Tab completes a cohort name from the store.
    tmux.send(literal: "cohort show dia")
    tmux.send(keys: "Tab")
    try tmux.waitFor { $0.contains("cohort show diabetes-patients") }
    tmux.send(keys: "Enter")
    try tmux.waitFor { $0.contains("g1") && $0.contains("snapshots") }

    // Ctrl-C at the prompt clears the line.
    tmux.send(literal: "server sho")
    try tmux.waitFor { $0.contains("cohort> server sho") }
    tmux.send(keys: "C-c")
    // The line is cleared before anything new is typed (as a person would see it).
    try tmux.waitFor { !$0.contains("cohort> server sho") }
    tmux.send(literal: "version")
    tmux.send(keys: "Enter")
    try tmux.waitFor { $0.contains("cohort 0.") }
    #expect(!tmux.capture().contains("server shoversion"))

    // Ctrl-C during a running command cancels it and returns to the prompt.
    let started = Date()
    tmux.send(literal: "sleep 60")
    tmux.send(keys: "Enter")
    Thread.sleep(forTimeInterval: 0.7)
    tmux.send(keys: "C-c")
    try tmux.waitFor { $0.contains("error: interrupted") }
    #expect(Date().timeIntervalSince(started) < 20)
    tmux.send(literal: "server list --format csv")
    tmux.send(keys: "Enter")
    try tmux.waitFor { $0.contains("prod,https://x/r4,none,get") }

    // Ctrl-D leaves; the history survives a restart (and is private).
    tmux.send(keys: "C-d")
    try tmux.waitForExit()
    let history = dir + "/history"
    let attributes = try FileManager.default.attributesOfItem(atPath: history)
    #expect((attributes[.posixPermissions] as? Int) == 0o600)

    let again = try Tmux(cwd: dir, command: "\(Binary.path) --workspace \(dir)/Cohorts")
    defer { again.kill() }
    try again.waitFor { $0.contains("cohort>") }
    again.send(keys: "Up")
    try again.waitFor { $0.contains("cohort> server list --format csv") }
    again.send(keys: "Up")
    // `sleep 60` came before it; the duplicate-free history holds each command once.
    try again.waitFor { $0.contains("cohort> sleep 60") }
  }

  @Test func ctrlCDuringAnExportLeavesAResumableJob() async throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var configuration = BulkServerConfiguration()
    configuration.patients = 5
    configuration.pollsBeforeComplete = 1000  // the server never finishes while we watch
    let server = try await BulkDataServer.start(configuration)
    defer { Task { await server.stop() } }
    _ = try Binary.run(["--workspace", dir + "/Cohorts", "-c", "server add s \(server.baseURL); cohort add c --server s --group all-patients"], cwd: dir)
    let tmux = try Tmux(cwd: dir, command: "\(Binary.path) --workspace \(dir)/Cohorts")
    defer { tmux.kill() }
    try tmux.waitFor { $0.contains("cohort>") }
    tmux.send(literal: "export c")
    tmux.send(keys: "Enter")
    try tmux.waitFor { $0.contains("waiting for the server") }
    tmux.send(keys: "C-c")
    try tmux.waitFor { $0.contains("export #1 interrupted; `export c` resumes the same server job") }
    tmux.send(literal: "status --format csv")
    tmux.send(keys: "Enter")
    try tmux.waitFor { $0.contains("c,#1,accepted") }
  }

  @Test func secretLinesNeverReachTheHistory() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let tmux = try Tmux(cwd: dir, command: "\(Binary.path) --workspace \(dir)/Cohorts")
    defer { tmux.kill() }
    try tmux.waitFor { $0.contains("cohort>") }
    tmux.send(literal: "set note 'Bearer abc.def.ghi'")
    tmux.send(keys: "Enter")
    tmux.send(literal: "version")
    tmux.send(keys: "Enter")
    tmux.send(literal: "version")
    tmux.send(keys: "Enter")
    try tmux.waitFor { $0.components(separatedBy: "cohort 0.").count >= 3 }
    let text = (try? String(contentsOfFile: dir + "/history", encoding: .utf8)) ?? ""
    #expect(text.contains("version"))
    #expect(!text.contains("abc.def"))
    #expect(text.components(separatedBy: "version").count == 2, "consecutive duplicates dropped")
  }
}

/// A tmux session on a private socket, stopped by `kill()`.
final class Tmux {
  static var available: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") }
  let socket = "cohort-test-\(UUID().uuidString.prefix(8))"
  let cwd: String

  init(cwd: String, command: String) throws {
    self.cwd = cwd
    let env = "COHORT_HISTFILE=\(cwd)/history NO_COLOR=1 TERM=xterm"
    // `timeout` makes the shell (and with it this tmux server) stop by itself even if the test dies.
    tmux(["new-session", "-d", "-s", "t", "-x", "120", "-y", "40", "-c", cwd, "timeout 120 env \(env) \(command)"])
  }

  /// Runs tmux with posix_spawn + waitpid (the tmux server daemonises; Foundation's Process can
  /// wait forever on such a child), output captured through a file.
  @discardableResult
  func tmux(_ args: [String]) -> String {
    let outPath = NSTemporaryDirectory() + "tmux-out-" + UUID().uuidString
    defer { unlink(outPath) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv = (["/usr/bin/tmux", "-L", socket] + args).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, "/usr/bin/tmux", &actions, nil, argv, environ) == 0 else { return "" }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
  }

  func send(literal text: String) { tmux(["send-keys", "-t", "t", "-l", text]) }
  func send(keys: String) { tmux(["send-keys", "-t", "t", keys]) }
  func capture() -> String { tmux(["capture-pane", "-p", "-t", "t", "-S", "-200"]) }

  /// The session is gone once the shell has exited.
  var alive: Bool { tmux(["list-sessions", "-F", "#{session_name}"]).contains("t") }

  func waitForExit(timeout: TimeInterval = 15) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
      if !alive { return }
      Thread.sleep(forTimeInterval: 0.1)
    }
    Issue.record("the shell did not exit; the screen was:\n\(capture())")
    struct Timeout: Error {}
    throw Timeout()
  }

  func waitFor(timeout: TimeInterval = 15, _ predicate: (String) -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
      if predicate(capture()) { return }
      Thread.sleep(forTimeInterval: 0.1)
    }
    Issue.record("timed out; the screen was:\n\(capture())")
    struct Timeout: Error {}
    throw Timeout()
  }

  func kill() { tmux(["kill-server"]) }
}
