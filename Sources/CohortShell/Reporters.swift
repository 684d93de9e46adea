// Human reporters: plain periodic lines (logs, pipes) and a one-line TTY progress display. They render the
// export's events (CohortKit's `ExportEvent`); engines emit, reporters render.
import CohortKit
import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

enum ReportFormat {
  static func bytes(_ n: Int64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"]
    var v = Double(n)
    var i = 0
    while v >= 1000 && i < units.count - 1 {
      v /= 1000
      i += 1
    }
    return i == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[i])
  }

  static func duration(_ d: Duration) -> String {
    let s = seconds(d)
    if s < 1 { return String(format: "%.0f ms", s * 1000) }
    if s < 120 { return String(format: "%.0f s", s) }
    return String(format: "%.0f min", s / 60)
  }

  static func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
  }

  /// Writes to standard error with write(2).
  static func stderrWriter(_ s: String) {
    let bytes = Array(s.utf8)
    var off = 0
    while off < bytes.count {
      let n = bytes.withUnsafeBytes { b in b.baseAddress.map { write(2, $0 + off, b.count - off) } ?? -1 }
      if n <= 0 { return }
      off += n
    }
  }
}

/// Shared counters for both reporters.
///
/// One reporter can see more than one server job: an export that pulls the history of patients who
/// joined the Group starts a second kick-off (`patient=`) after the first manifest. Each manifest
/// starts a new *round* with its own file counters, so the joiners' files are counted on their own
/// line (`joiners: files 3/6`) instead of running past the first job's total (`19/10`).
struct ProgressState {
  var phase = "starting"
  var xProgress: String?
  /// Files of the current round (the latest manifest).
  var filesTotal = 0
  var filesDone = 0
  /// Whether the current round's total is known (a manifest was seen).
  var totalKnown = false
  /// Manifests seen so far (1 = the main job).
  var round = 0
  /// The label of the current round: nil for the main job, "joiners" for the follow-up `patient=` job.
  var roundLabel: String?
  /// The label the next manifest's round gets (set by a kick-off after the first manifest).
  var pendingLabel: String?
  var bytesDone: Int64 = 0
  var inFlight: [String: Int64] = [:]
  var downloadStart: ContinuousClock.Instant?
  var lastEmit: ContinuousClock.Instant?

  var bytes: Int64 { bytesDone + inFlight.values.reduce(0, +) }

  func rate(now: ContinuousClock.Instant) -> Double? {
    guard let s = downloadStart else { return nil }
    let secs = ReportFormat.seconds(s.duration(to: now))
    return secs > 0.2 ? Double(bytes) / secs : nil
  }

  mutating func apply(_ e: ExportEvent) {
    switch e {
    case .kickoff(let k):
      phase = "kick-off"
      // The only follow-up job an export starts is the `patient=` pull of the Group's joiners (the
      // patient references themselves are kept out of events), so a later accepted kick-off is theirs.
      if round > 0, k.statusURL != nil { pendingLabel = "joiners" }
    case .statusProgress(let x, _, _):
      phase = "waiting for the server"
      xProgress = x
    case .statusComplete: phase = "manifest"
    case .manifestComplete(let s):
      round += 1
      roundLabel = round > 1 ? (pendingLabel ?? "job \(round)") : nil
      pendingLabel = nil
      filesTotal = s.outputFiles + s.deletedFiles + s.errorFiles
      filesDone = 0
      totalKnown = true
    case .downloadRequest(let url, _, _):
      phase = "downloading"
      if downloadStart == nil { downloadStart = .now }
      inFlight[url] = 0
    case .downloadProgress(let url, let b): inFlight[url] = b
    case .downloadComplete(let f):
      inFlight[f.url] = nil
      filesDone += 1
      if totalKnown && filesDone > filesTotal { totalKnown = false }
      bytesDone += f.bytes
    case .downloadError(let url, _): inFlight[url] = nil
    case .exportComplete: phase = "done"
    case .retry, .warning, .information: break
    }
  }

  /// `3/10`, or `3` when no manifest total applies (e.g. a resumed job whose manifest was read from disk).
  var fileCount: String { totalKnown ? "\(filesDone)/\(filesTotal)" : String(filesDone) }

  /// `(3/10)` for the main job, `(joiners 3/6)` for a follow-up job.
  var fileCounter: String { "(" + (roundLabel.map { $0 + " " } ?? "") + fileCount + ")" }

  func line(now: ContinuousClock.Instant) -> String {
    var parts = [roundLabel.map { "\($0): \(phase)" } ?? phase]
    if let x = xProgress, phase == "waiting for the server" { parts.append(x) }
    if totalKnown && filesTotal > 0 || !totalKnown && filesDone > 0 { parts.append("files " + fileCount) }
    if bytes > 0 { parts.append(ReportFormat.bytes(bytes)) }
    if let r = rate(now: now), phase == "downloading" { parts.append(ReportFormat.bytes(Int64(r)) + "/s") }
    return parts.joined(separator: " · ")
  }
}

/// Plain lines for logs and pipes: every milestone, and progress at most once per `interval`.
final class PlainReporter: Sendable {
  private let interval: Duration
  private let write: @Sendable (String) -> Void
  private let state = Mutex(ProgressState())

  init(interval: Duration = .seconds(10), write: @escaping @Sendable (String) -> Void = ReportFormat.stderrWriter) {
    self.interval = interval
    self.write = write
  }

  func handle(_ event: ExportEvent) {
    let now = ContinuousClock.now
    let text: String? = state.withLock { s in
      s.apply(event)
      switch event {
      case .kickoff(let k):
        // A failed kick-off is reported once, by the command's error line.
        guard k.statusURL != nil else { return nil }
        let what = s.pendingLabel.map { "\($0) export" } ?? "export"
        return "\(what) accepted (\(k.method.rawValue.uppercased()) \(k.url))"
      case .statusProgress(let x, _, let next):
        if let last = s.lastEmit, last.duration(to: now) < interval { return nil }
        s.lastEmit = now
        return "waiting for the server" + (x.map { ": \($0)" } ?? "") + " (next check in \(ReportFormat.duration(next)))"
      case .retry(let reason, let after): return "retrying in \(ReportFormat.duration(after)): \(reason)"
      case .statusComplete(let t): return "export complete on the server (transactionTime \(t))"
      case .manifestComplete(let m):
        return (s.roundLabel.map { "\($0) manifest: " } ?? "manifest: ") + "\(m.outputFiles) output, \(m.deletedFiles) deleted, \(m.errorFiles) error files"
          + (m.pages > 1 ? " in \(m.pages) pages" : "")
      case .downloadRequest, .downloadError: return nil
      case .downloadProgress:
        if let last = s.lastEmit, last.duration(to: now) < interval { return nil }
        s.lastEmit = now
        return s.line(now: now)
      case .downloadComplete(let f):
        return "downloaded \(f.relativePath): \(f.lines) resources, \(ReportFormat.bytes(f.bytes)) \(s.fileCounter)"
      case .warning(let w): return "warning: \(w)"
      case .information(let w): return w
      case .exportComplete(let t):
        return "done: \(t.files) files, \(t.resources) resources, \(ReportFormat.bytes(t.bytes)) in \(ReportFormat.duration(.seconds(t.seconds)))"
      }
    }
    if case .downloadError(let url, let message) = event { write("download failed: \(url): \(message)\n") }
    if let text { write(text + "\n") }
  }
}

/// One progress line redrawn in place (`\r` + erase line) on a terminal: phase, X-Progress,
/// files, bytes and rate. Warnings and retries are printed above it.
final class TTYReporter: Sendable {
  private let write: @Sendable (String) -> Void
  private let minRedraw: Duration
  private let state = Mutex(ProgressState())

  init(minRedraw: Duration = .milliseconds(100), write: @escaping @Sendable (String) -> Void = ReportFormat.stderrWriter) {
    self.minRedraw = minRedraw
    self.write = write
  }

  /// True when file descriptor 2 is a terminal and TERM is not `dumb`.
  static var stderrIsTerminal: Bool {
    isatty(2) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb"
  }

  func handle(_ event: ExportEvent) {
    let now = ContinuousClock.now
    let out: String? = state.withLock { s in
      s.apply(event)
      var above: String? = nil
      switch event {
      case .warning(let w): above = "warning: \(w)"
      case .information(let w): above = w
      case .retry(let reason, let after): above = "retrying in \(ReportFormat.duration(after)): \(reason)"
      case .downloadError(let url, let message): above = "download failed: \(url): \(message)"
      case .downloadProgress, .statusProgress:
        if let last = s.lastEmit, last.duration(to: now) < minRedraw { return nil }
      default: break
      }
      s.lastEmit = now
      let line = "\r\u{1B}[0K" + s.line(now: now)
      return above.map { "\r\u{1B}[0K" + $0 + "\n" + line } ?? line
    }
    if let out { write(out) }
    if case .exportComplete = event { write("\n") }
  }

  /// Ends the line (call when the export stops for any reason).
  func finish() { write("\n") }
}
