import CohortTestSupport
import Foundation
import Testing

@testable import CohortKit
@testable import CohortShell

/// A session whose stdout and stderr go to files, in a fresh workspace (main-actor isolated, like the session).
@MainActor
final class Harness {
  let dir: String
  let outPath: String
  let errPath: String
  let outFD: Int32
  let errFD: Int32
  let shell: Shell

  init(environment: [String: String] = [:]) throws {
    dir = NSTemporaryDirectory() + "cohort-shell-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    outPath = dir + "/stdout"
    errPath = dir + "/stderr"
    outFD = open(outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    errFD = open(errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    let workspace = Workspace(location: WorkspaceLocation(path: dir + "/Cohorts", source: .option))
    let session = Session(
      workspace: workspace, environment: environment, stdout: FDWriter(fd: outFD), stderr: FDWriter(fd: errFD),
      color: false)
    shell = Shell(session: session)
  }

  isolated deinit {
    close(outFD)
    close(errFD)
    try? FileManager.default.removeItem(atPath: dir)
  }

  var stdout: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }
  var stderr: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }

  /// Runs a line through the same grammar as every front end.
  @discardableResult
  func run(_ line: String) async throws -> Int32 {
    guard case .commands(let commands) = try Grammar.split(line, variables: shell.session.variables) else {
      Issue.record("incomplete line: \(line)")
      return -1
    }
    var status: Int32 = 0
    for words in commands { status = await shell.run(words: words) }
    return status
  }

  func write(_ name: String, _ text: String) throws -> String {
    let path = dir + "/" + name
    try FileManager.default.createDirectory(
      atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }
}

