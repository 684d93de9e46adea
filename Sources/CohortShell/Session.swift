import CohortKit
import Foundation

/// Documented exit codes.
public enum ExitStatus {
  public static let ok: Int32 = 0
  public static let failed: Int32 = 1
  public static let server: Int32 = 2
  public static let scriptStopped: Int32 = 3
  public static let usage: Int32 = 64
  public static let interrupted: Int32 = 130
}

/// Where a command came from, for `FILE:LINE: error:` messages.
public struct SourceLocation: Sendable, Equatable {
  public var file: String
  public var line: Int
  public var description: String { "\(file):\(line)" }
}

/// Writes to a file descriptor with write(2) (Glibc's stdout/stderr globals are not Swift 6 safe).
public struct FDWriter: Sendable {
  public let fd: Int32
  public init(fd: Int32) { self.fd = fd }
  public func write(_ text: String) {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
      let n = bytes.withUnsafeMutableBytes { buffer in
        Foundation.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
      }
      if n <= 0 {
        if n < 0 && errno == EINTR { continue }
        return
      }
      offset += n
    }
  }
  public var isTerminal: Bool { isatty(fd) == 1 }
}

/// The state one shell session carries between commands (REPL, script, `-c`). Main-actor isolated: commands run
/// one at a time on the main actor; closures handed to engines (events, progress, notes) capture only the Sendable
/// writers, never the session.
@MainActor
public final class Session {
  public var workspace: Workspace
  public let environment: [String: String]
  /// nil = automatic: a table on a terminal, plain lines when piped.
  public var format: OutputFormat?
  public var echo = false
  public var bail = true
  public var color: Bool
  public var variables: [String: String] = [:]
  public var includeDepth = 0
  public var interactive = false
  public let stdout: FDWriter
  public let stderr: FDWriter
  /// Servers started with `serve --background` (stopped when the session ends).
  public var backgroundServers: [BackgroundServer] = []

  public init(
    workspace: Workspace, environment: [String: String], stdout: FDWriter = FDWriter(fd: 1),
    stderr: FDWriter = FDWriter(fd: 2), color: Bool? = nil
  ) {
    self.workspace = workspace
    self.environment = environment
    self.stdout = stdout
    self.stderr = stderr
    let noColor = !(environment["NO_COLOR"] ?? "").isEmpty || environment["TERM"] == "dumb"
    self.color = color ?? (!noColor && stdout.isTerminal)
  }

  /// The effective output format for results.
  public var effectiveFormat: OutputFormat { format ?? (stdout.isTerminal ? .table : .plain) }

  /// While recording, what commands print on stdout is also kept here.
  var captured: String?
  /// Run recording (`run FILE --record`, `record on`).
  var recorder: Recorder?
  /// `replay --frozen`: what "latest" meant for each cohort at this point of the recorded run.
  var pinnedLatest: [String: Int]?

  func out(_ text: String) {
    stdout.write(text)
    if captured != nil { captured! += text }
  }

  public func print(_ text: String) {
    out(text.hasSuffix("\n") || text.isEmpty ? text : text + "\n")
  }

  public func emit(_ table: Table, format override: OutputFormat? = nil) {
    out(table.render(override ?? effectiveFormat))
  }

  /// A diagnostic on stderr.
  /// Diagnostics may quote servers: control characters are escaped, secrets redacted.
  public func note(_ text: String) { stderr.write(Session.noteLine(text)) }

  /// A diagnostic line as `note` writes it (for closures that run off the main actor and hold only the writer).
  nonisolated static func noteLine(_ text: String) -> String { Redaction.text(Sanitize.text(text)) + "\n" }

  /// A warning line as `warn` writes it.
  nonisolated static func warningLine(_ text: String, color: Bool, at location: SourceLocation? = nil) -> String {
    labelledLine("warning", ansi: "33", text, color: color, at: location)
  }

  /// `FILE:LINE: label: text` (the label in colour `ansi` on a colour terminal), escaped and redacted.
  nonisolated static func labelledLine(
    _ label: String, ansi: String, _ text: String, color: Bool, at location: SourceLocation?
  ) -> String {
    let shown = color ? "\u{1B}[\(ansi)m\(label):\u{1B}[0m " : "\(label): "
    return (location.map { "\($0.description): " } ?? "") + shown + Redaction.text(Sanitize.text(text)) + "\n"
  }

  /// A warning on stderr, `FILE:LINE: warning: …` when it concerns a script line.
  public func warn(_ text: String, at location: SourceLocation? = nil) {
    stderr.write(Session.warningLine(text, color: color, at: location))
  }

  public func error(_ text: String, at location: SourceLocation?) {
    stderr.write(Session.labelledLine("error", ansi: "31", text, color: color, at: location))
  }

  /// The folder of the script being run (nil at the prompt): relative file arguments are resolved against it.
  var scriptDirectory: String?

  /// A user-given file path: relative to the running script's folder, else to the current directory.
  func resolvePath(_ path: String) -> String {
    if path.hasPrefix("/") || path.hasPrefix("~") { return Workspace.absolutePath(path) }
    guard let base = scriptDirectory else { return Workspace.absolutePath(path) }
    return URL(fileURLWithPath: base).appendingPathComponent(path).standardizedFileURL.path
  }

  /// The workspace, opened (with `create`, made on first write with a one-line notice).
  @discardableResult
  public func open(create: Bool) throws -> Workspace {
    try workspace.open(create: create) { path in
      self.note("created workspace \(path)")
    }
  }
}

/// A server started inside this process by `serve --background`.
public protocol BackgroundServer: AnyObject, Sendable {
  var baseURL: String { get }
  func stop() async
}
