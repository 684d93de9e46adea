// Helpers every test target shares (one copy): the built binary, temporary folders, waiting, a value box for
// `@Sendable` callbacks, the CI switch. Test-only: no product depends on this target.
import Foundation
import Synchronization

/// The package root (where Package.swift is).
public let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
  .deletingLastPathComponent()

/// Under CI=true (`.ci/run` installs tmux, groff, bash-completion and has ../shared/data), tests that would skip
/// for want of a tool or data run instead and fail loudly.
public let runningInCI = ProcessInfo.processInfo.environment["CI"] == "true"

/// A fresh folder under the system temporary directory (the caller removes it).
public func temporaryDirectory() throws -> String {
  let dir = NSTemporaryDirectory() + "cohort-test-" + UUID().uuidString
  try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
  return dir
}

/// A failure raised by the test helpers themselves.
public struct TestFailure: Error, CustomStringConvertible {
  public var description: String
  public init(_ description: String) { self.description = description }
}

/// A value behind a `Mutex`, shared with `@Sendable` callbacks.
public final class Box<Value: Sendable>: Sendable {
  private let stored: Mutex<Value>
  public init(_ value: Value) { stored = Mutex(value) }
  public var value: Value {
    get { stored.withLock { $0 } }
    set { stored.withLock { $0 = newValue } }
  }
  public func mutate<T: Sendable>(_ body: (inout Value) -> T) -> T { stored.withLock { body(&$0) } }
}

/// Polls `condition` every 20 ms until it holds or `seconds` pass.
public func waitUntil(seconds: Double, _ condition: () async throws -> Bool) async rethrows -> Bool {
  let deadline = Date().addingTimeInterval(seconds)
  while Date() < deadline {
    if try await condition() { return true }
    try? await Task.sleep(nanoseconds: 20_000_000)
  }
  return try await condition()
}

/// The built `cohort` executable (built by `swift build --build-tests`).
public enum Binary {
  public static var path: String { packageRoot.appendingPathComponent(".build/debug/cohort").path }

  public struct Result: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
  }

  /// The child's environment: ours without COHORT_WORKSPACE, its own history file, then `extra`.
  public static func environment(_ extra: [String: String], cwd: String) -> [String: String] {
    var env = ProcessInfo.processInfo.environment
    env["COHORT_WORKSPACE"] = nil
    env["COHORT_HISTFILE"] = cwd + "/history"
    for (k, v) in extra { env[k] = v }
    return env
  }

  /// Runs the binary to completion with optional stdin text (output goes to files, so a chatty child never blocks
  /// on a pipe).
  public static func run(
    _ arguments: [String], stdin: String? = nil, cwd: String, environment: [String: String] = [:]
  ) throws -> Result {
    let process = try launch(arguments, stdin: stdin, cwd: cwd, environment: environment, tag: "run")
    process.process.waitUntilExit()
    return Result(status: process.process.terminationStatus, stdout: process.stdout, stderr: process.stderr)
  }

  /// A started child and where its output goes.
  public final class Launched: @unchecked Sendable {  // @unchecked: Process is not Sendable; only read after start.
    public let process: Process
    let outPath: String
    let errPath: String
    init(process: Process, outPath: String, errPath: String) {
      self.process = process
      self.outPath = outPath
      self.errPath = errPath
    }
    public var stdout: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }
  }

  /// Starts the binary without waiting; stdout/stderr go to files in `cwd`, stdin comes from `stdin` (or /dev/null).
  public static func launch(
    _ arguments: [String], stdin: String? = nil, cwd: String, environment: [String: String] = [:], tag: String
  ) throws -> Launched {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: cwd)
    process.environment = Self.environment(environment, cwd: cwd)
    let stamp = UUID().uuidString.prefix(8)
    let outPath = cwd + "/\(tag)-\(stamp).out"
    let errPath = cwd + "/\(tag)-\(stamp).err"
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    process.standardOutput = FileHandle(forWritingAtPath: outPath)
    process.standardError = FileHandle(forWritingAtPath: errPath)
    if let stdin {
      let inPath = cwd + "/\(tag)-\(stamp).in"
      _ = FileManager.default.createFile(atPath: inPath, contents: Data(stdin.utf8))
      process.standardInput = FileHandle(forReadingAtPath: inPath)
    } else {
      process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
    }
    try process.run()
    return Launched(process: process, outPath: outPath, errPath: errPath)
  }
}
