import CohortStore
import Crypto
import Foundation

/// A notebook's run record (`NOTEBOOK.run.json`): what ran, on what, and what it produced — enough to verify the
/// files offline and to replay the analysis byte for byte. Never tokens, keys or patient identifiers.
public struct RunRecord: Codable, Sendable, Equatable {
  public static let currentFormat = 1

  public struct Tool: Codable, Sendable, Equatable {
    public var name = "cohort"
    public var version: String
    public var commit: String?
    public init(version: String, commit: String?) {
      self.version = version
      self.commit = commit
    }
  }

  public struct Command: Codable, Sendable, Equatable {
    public var line: Int
    /// The command as written (secrets and patient identifiers redacted).
    public var text: String
    /// The words after variable expansion (redacted the same way).
    public var words: [String]
    public var status: Int32
    /// What it printed on stdout, kept only for commands that change state (replayed by `replay --frozen`);
    /// analysis output may name patients, so only its hash is kept.
    public var output: String?
    /// SHA-256 of what it printed (compared by `replay`).
    public var outputSHA256: String
    /// Per cohort, the latest snapshot number when the command finished (what "latest" meant then).
    public var latest: [String: Int]
    /// For export commands: the export's effective parameters (JSON, no secrets).
    public var parameters: String?
    /// For commands that use a view (`view save|run|materialize|diff`, `expect rows`): the view as named on the
    /// line (a file or a saved view) and the SHA-256 of its definition file when the command ran.
    public var view: String?
    public var viewSHA256: String?

    public init(
      line: Int, text: String, words: [String], status: Int32, output: String, keepOutput: Bool, latest: [String: Int],
      parameters: String?
    ) {
      self.line = line
      self.text = text
      self.words = words
      self.status = status
      self.output = keepOutput ? output : nil
      self.outputSHA256 = SHA256.hash(data: Data(output.utf8)).map { String(format: "%02x", $0) }.joined()
      self.latest = latest
      self.parameters = parameters
    }
  }

  public struct Server: Codable, Sendable, Equatable {
    public var name: String
    public var baseURL: String
    public var software: String?
  }

  public struct File: Codable, Sendable, Equatable {
    public var path: String
    public var kind: String
    public var type: String
    public var bytes: Int64
    public var lines: Int
    public var sha256: String
  }

  public struct Export: Codable, Sendable, Equatable {
    public var cohort: String
    public var snapshot: Int
    public var kind: String
    public var kickoffURL: String?
    public var statusURL: String?
    public var since: String?
    public var transactionTime: String?
    public var manifest: String?
    public var outcome: String?
    public var files: [File]
  }

  public var format = RunRecord.currentFormat
  public var tool: Tool
  public var notebook: String
  public var workspace: String
  public var started: String
  public var finished: String?
  public var exitStatus: Int32?
  public var commands: [Command] = []
  public var servers: [Server] = []
  public var exports: [Export] = []
  /// Script variables at the end of the run (e.g. `$server_url` set by `serve --background`).
  public var variables: [String: String] = [:]

  public init(tool: Tool, notebook: String, workspace: String, started: String) {
    self.tool = tool
    self.notebook = notebook
    self.workspace = workspace
    self.started = started
  }

  public static func path(forNotebook notebook: String) -> String {
    (notebook.hasSuffix(".cohort") ? String(notebook.dropLast(".cohort".count)) : notebook) + ".run.json"
  }

  public static func load(path: String) throws -> RunRecord {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw KitError.failed("no run record at \(path); record one with `cohort run NOTEBOOK --record`")
    }
    let record: RunRecord
    do {
      record = try JSONDecoder().decode(RunRecord.self, from: data)
    } catch {
      if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let format = object["format"] as? Int,
        format > currentFormat
      {
        throw KitError.failed("\(path) is run-record format \(format), newer than this cohort knows (\(currentFormat)); upgrade cohort")
      }
      throw KitError.failed("\(path) is not a readable run record (\(error))")
    }
    return record
  }

  public func write(path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let data = try encoder.encode(self)
    let temp = path + ".tmp"
    try data.write(to: URL(fileURLWithPath: temp))
    guard rename(temp, path) == 0 else { throw KitError.failed("cannot write \(path)") }
  }

  /// Fills servers and exports from the store: every export of the cohorts the run touched, since `sinceExportID`.
  public mutating func collect(store: Store, workspace: Workspace, afterExportID: Int64) throws {
    let all = try store.exports(cohort: nil).filter { ($0.id ?? 0) > afterExportID }
    var serverNames = Set<String>()
    exports = try all.map { e in
      serverNames.insert(try store.cohort(named: e.cohort).server)
      return Export(
        cohort: e.cohort, snapshot: e.seq, kind: e.kind, kickoffURL: e.kickoffURL, statusURL: e.statusURL, since: e.since,
        transactionTime: e.transactionTime, manifest: e.manifestJSON, outcome: e.outcome ?? e.phase.rawValue,
        files: try store.files(exportID: e.id!).map {
          File(path: e.cohort + "/" + $0.path, kind: $0.kind, type: $0.type, bytes: $0.bytes, lines: $0.lines, sha256: $0.sha256)
        })
    }
    servers = try serverNames.sorted().map { name in
      let s = try store.server(named: name)
      let software = all.first { (try? store.cohort(named: $0.cohort).server) == name }?.serverSoftware
      return Server(name: s.name, baseURL: s.baseURL, software: software)
    }
  }

  /// Options whose value is a secret: never in history, records or echoed text.
  public static var secretOptions: Set<String> { Redaction.secretOptions }

  /// Redacts secrets and patient identifiers (one rule: `Redaction`).
  public static func redact(_ words: [String]) -> [String] { Redaction.words(words) }
}

/// `verify NOTEBOOK`: every file of the record present and unchanged, the index agreeing, no extra files.
public enum RunVerifier {
  public struct Finding: Sendable, Equatable {
    public var kind: String  // missing, modified, extra, index
    public var path: String
    public var detail: String
  }

  public static func verify(_ record: RunRecord, workspace: Workspace) throws -> [Finding] {
    var findings: [Finding] = []
    var recorded = Set<String>()
    let store = workspace.exists ? try workspace.store(create: false) : nil
    for export in record.exports {
      for file in export.files {
        recorded.insert(file.path)
        let full = workspace.path + "/" + file.path
        guard FileManager.default.fileExists(atPath: full) else {
          findings.append(Finding(kind: "missing", path: file.path, detail: "recorded \(file.bytes) bytes, sha256 \(file.sha256.prefix(12))…"))
          continue
        }
        let (bytes, digest) = try sha256(of: full)
        if bytes != file.bytes || digest != file.sha256 {
          findings.append(
            Finding(kind: "modified", path: file.path, detail: "sha256 \(digest.prefix(12))… (\(bytes) bytes), recorded \(file.sha256.prefix(12))… (\(file.bytes) bytes)"))
        }
      }
      if let store {
        let snaps = (try? store.exports(cohort: export.cohort)) ?? []
        if let row = snaps.first(where: { $0.seq == export.snapshot }) {
          let indexed = Dictionary(uniqueKeysWithValues: try store.files(exportID: row.id!).map { (export.cohort + "/" + $0.path, $0.sha256) })
          for file in export.files where indexed[file.path] != file.sha256 {
            findings.append(Finding(kind: "index", path: file.path, detail: "the workspace index does not list this file with the recorded hash"))
          }
          if row.transactionTime != export.transactionTime {
            findings.append(Finding(kind: "index", path: "\(export.cohort) #\(export.snapshot)", detail: "transactionTime differs from the record"))
          }
        } else {
          findings.append(Finding(kind: "index", path: "\(export.cohort) #\(export.snapshot)", detail: "the snapshot is not in the workspace"))
        }
      }
    }
    // Extra files inside the recorded export folders.
    let folders = Set(record.exports.map { "\($0.cohort)/\(String(format: "%04d", $0.snapshot))" })
    for folder in folders.sorted() {
      let base = workspace.path + "/" + folder
      guard let enumerator = FileManager.default.enumerator(atPath: base) else { continue }
      while let name = enumerator.nextObject() as? String {
        guard name.hasSuffix(".ndjson") || name.hasSuffix(".ndjson.gz"), name != "log.ndjson" else { continue }
        let path = folder + "/" + name
        if !recorded.contains(path) {
          findings.append(Finding(kind: "extra", path: path, detail: "not in the record"))
        }
      }
    }
    return findings.sorted { ($0.path, $0.kind) < ($1.path, $1.kind) }
  }

  static func sha256(of path: String) throws -> (Int64, String) {
    guard let handle = FileHandle(forReadingAtPath: path) else { throw KitError.failed("cannot read \(path)") }
    defer { try? handle.close() }
    var hasher = SHA256()
    var total: Int64 = 0
    while let chunk = try handle.read(upToCount: 8 << 20), !chunk.isEmpty {
      hasher.update(data: chunk)
      total += Int64(chunk.count)
    }
    return (total, hasher.finalize().map { String(format: "%02x", $0) }.joined())
  }
}
