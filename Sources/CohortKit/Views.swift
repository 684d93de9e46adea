import CohortBasics
import CohortStore
import Crypto
import FHIRPath
import Foundation
import NDJSON
import SQLOnFHIR
import Synchronization

/// A loaded SQL-on-FHIR ViewDefinition and how its rows print.
public struct ViewSpec: Sendable {
  public let definition: ViewDefinition
  /// Where it was read from.
  public let path: String
  /// SHA-256 (hex) of the file's bytes.
  public let sha256: String

  public var resource: String { definition.resource }
  public var name: String? { definition.name }
  public var columnNames: [String] { definition.columns.map(\.name) }
  /// Per column, what its cells hold (from the column's declared FHIR type): the JSON type of `--format json`.
  public var columnKinds: [ColumnKind] {
    definition.columns.map { column in
      if column.collection { return .json }
      switch column.type {
      case "integer", "positiveInt", "unsignedInt", "integer64": return .integer
      case "decimal": return .number
      case "boolean": return .boolean
      default: return .text
      }
    }
  }

  /// Per column: "name type → SQL type".
  public var columnSummary: [[String]] {
    definition.columns.map { [$0.name, ($0.type ?? "") + ($0.collection ? " (collection)" : ""), $0.sqlType] }
  }

  /// Reads and validates a view file (errors name the file and the place in the view).
  public init(path: String) throws {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw KitError.failed("cannot read the view \(path): no such file or not readable")
    }
    self.path = path
    sha256 = sha256Hex(data)
    do {
      definition = try ViewDefinition(jsonText: data)
    } catch {
      throw KitError.invalidArgument("\(path): \(error)")
    }
  }
}

/// One output row (values aligned with the view's columns).
public struct ViewRow: Sendable {
  let values: [JSON]

  /// Cells for table/CSV output: "" for null, JSON text for collections.
  public var cells: [String] {
    values.map { v in
      switch v {
      case .null: return ""
      case .string(let s): return s
      case .bool(let b): return b ? "true" : "false"
      case .integer(let i): return String(i)
      case .decimal(let d, let s): return JSON.decimalText(d, scale: s)
      case .array, .object: return v.jsonText
      }
    }
  }

  /// The row as a JSON object text, keys in column order.
  public func jsonObject(columns: [String]) -> String {
    JSON.object(JSONObject(keys: columns, values: values)).jsonText
  }
}

/// Counts of one view run.
public struct ViewRunStats: Sendable, Equatable {
  public var resources = 0
  public var rows = 0
  public init() {}
}

/// Runs views over NDJSON files or a cohort's snapshot, streaming.
public enum ViewRunner {
  /// NDJSON files (`*.ndjson`, `*.ndjson.gz`) under a folder, sorted, or the file itself.
  public static func ndjsonFiles(at path: String) throws -> [String] {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
      throw KitError.invalidArgument("no such file or folder: \(path)")
    }
    guard isDir.boolValue else { return [path] }
    var files: [String] = []
    let enumerator = FileManager.default.enumerator(atPath: path)
    while let name = enumerator?.nextObject() as? String {
      if name.hasSuffix(".ndjson") || name.hasSuffix(".ndjson.gz") { files.append(path + "/" + name) }
    }
    return files.sorted()
  }

  /// Rows of every resource of the view's type in the files.
  public static func run(
    _ spec: ViewSpec, files: [String], workers: Int? = nil, onRow: (ViewRow) throws -> Void
  ) throws -> ViewRunStats {
    let batcher = RowBatcher(spec: spec, workers: workers ?? Self.workers)
    let type = Array(spec.resource.utf8)
    for file in files {
      try forEachLine(path: file) { _, _, line in
        guard mentions(line, type) else { return }
        try batcher.add(file, line, onRow)
      }
    }
    return try batcher.finish(onRow)
  }

  /// Rows of the cohort's live resources of the view's type at snapshot `exportID`, read through
  /// the index (file, offset, length): each file is streamed once.
  public static func run(
    _ spec: ViewSpec, store: Store, workspace: Workspace, cohort: String, at exportID: Int64, workers: Int? = nil,
    onRow: (ViewRow) throws -> Void
  ) throws -> ViewRunStats {
    let batcher = RowBatcher(spec: spec, workers: workers ?? Self.workers)
    let folder = workspace.cohortFolder(cohort)
    try store.forEachLiveFile(cohort: cohort, type: spec.resource, at: exportID) { file, wanted in
      let path = folder + "/" + file
      guard FileManager.default.fileExists(atPath: path) else {
        throw KitError.failed("the file \(path) is missing; run `verify` or export again")
      }
      var next = 0
      try forEachLine(path: path) { start, end, line in
        // The index's offset may skip leading blanks of the line: take it when inside [start, end).
        while next < wanted.count, wanted[next].offset < start { next += 1 }
        guard next < wanted.count, wanted[next].offset < end else { return }
        let w = wanted[next]
        next += 1
        let skip = Int(w.offset - start)
        let n = min(w.length, line.count - skip)
        try batcher.add(path, UnsafeBufferPointer(rebasing: line[skip..<(skip + n)]), onRow)
      }
      if next < wanted.count {
        throw KitError.failed("\(path) is shorter than the index says (changed since export?); run `verify`")
      }
    }
    return try batcher.finish(onRow)
  }

  /// How many threads evaluate a view: the available cores (at most 8); `COHORT_VIEW_WORKERS` overrides it
  /// (1 evaluates on the calling thread). Rows come out in the same order whatever the number.
  public static var workers: Int {
    if let n = Environment.integer("COHORT_VIEW_WORKERS"), n >= 1 { return min(n, 64) }
    return max(1, min(8, ProcessInfo.processInfo.activeProcessorCount))
  }

  /// A cheap pre-filter: the line contains `"TYPE"` somewhere (else it cannot be of that type).
  static func mentions(_ line: UnsafeBufferPointer<UInt8>, _ type: [UInt8]) -> Bool {
    let n = type.count
    guard line.count >= n + 2 else { return false }
    var i = 0
    let last = line.count - n - 2
    while i <= last {
      if line[i] == 0x22, line[i + n + 1] == 0x22 {
        var k = 0
        while k < n, line[i + 1 + k] == type[k] { k += 1 }
        if k == n { return true }
      }
      i += 1
    }
    return false
  }

  /// Every non-blank line of a (possibly gzip) NDJSON file with its byte range in the
  /// (decompressed) stream; memory stays at one chunk plus the longest line.
  static func forEachLine(
    path: String, _ body: (_ start: Int64, _ end: Int64, UnsafeBufferPointer<UInt8>) throws -> Void
  ) throws {
    var carry: [UInt8] = []
    var carryStart: Int64 = 0
    var position: Int64 = 0
    func deliver(_ start: Int64, _ line: UnsafeBufferPointer<UInt8>) throws {
      var n = line.count
      while n > 0, line[n - 1] == 0x0D || line[n - 1] == 0x20 || line[n - 1] == 0x09 { n -= 1 }
      guard n > 0 else { return }
      try body(start, start + Int64(n), UnsafeBufferPointer(rebasing: line[0..<n]))
    }
    try NDJSONFile.readChunks(path: path) { raw in
      let chunk = raw.bindMemory(to: UInt8.self)
      var lineStart = 0
      var i = 0
      while i < chunk.count {
        if chunk[i] == 0x0A {
          if carry.isEmpty {
            try deliver(position + Int64(lineStart), UnsafeBufferPointer(rebasing: chunk[lineStart..<i]))
          } else {
            carry.append(contentsOf: UnsafeBufferPointer(rebasing: chunk[lineStart..<i]))
            try carry.withUnsafeBufferPointer { try deliver(carryStart, $0) }
            carry.removeAll(keepingCapacity: true)
          }
          lineStart = i + 1
        }
        i += 1
      }
      if lineStart < chunk.count {
        if carry.isEmpty { carryStart = position + Int64(lineStart) }
        carry.append(contentsOf: UnsafeBufferPointer(rebasing: chunk[lineStart..<chunk.count]))
      }
      position += Int64(chunk.count)
    }
    if !carry.isEmpty { try carry.withUnsafeBufferPointer { try deliver(carryStart, $0) } }
  }
}

/// Resources (NDJSON lines) of one file, copied into one buffer: the unit of parallel evaluation.
struct LineBatch: Sendable {
  var file: String
  var bytes: [UInt8] = []
  /// End offset (in `bytes`) of each line; a line starts where the previous one ends.
  var ends: [Int] = []
}

/// What a batch gave: its resources' rows in line order, or the first error (as the message to show).
struct BatchOutput: Sendable {
  var resources = 0
  var rows: [[JSON]] = []
  var failure: String?
}

/// Evaluates lines in batches on a bounded number of threads and hands rows to `onRow` in input order
/// (so the output is byte-identical to a one-thread run). Memory: at most `2 × workers` batches of
/// ≤ 512 lines / 1 MB and their rows, whatever the cohort's size.
final class RowBatcher {
  static let batchLines = 512
  static let batchBytes = 1 << 20
  let definition: ViewDefinition
  let workers: Int
  var stats = ViewRunStats()
  var current: LineBatch?
  var pending: [LineBatch] = []

  init(spec: ViewSpec, workers: Int) {
    definition = spec.definition
    self.workers = workers
  }

  func add(_ file: String, _ line: UnsafeBufferPointer<UInt8>, _ onRow: (ViewRow) throws -> Void) throws {
    if workers <= 1 {
      let rows: [[JSON]]
      do {
        rows = try definition.rows(forJSON: line)
      } catch {
        throw KitError.failed("\(file): \(error)")
      }
      try deliver(BatchOutput(resources: 1, rows: rows), onRow)
      return
    }
    if let c = current, c.file != file || c.ends.count >= Self.batchLines || c.bytes.count >= Self.batchBytes {
      pending.append(c)
      current = nil
      if pending.count >= 2 * workers { try drain(onRow) }
    }
    if current == nil { current = LineBatch(file: file) }
    current!.bytes.append(contentsOf: line)
    current!.ends.append(current!.bytes.count)
  }

  func finish(_ onRow: (ViewRow) throws -> Void) throws -> ViewRunStats {
    if let c = current {
      pending.append(c)
      current = nil
    }
    try drain(onRow)
    return stats
  }

  /// Evaluates the pending batches in parallel, then delivers them in order.
  func drain(_ onRow: (ViewRow) throws -> Void) throws {
    guard !pending.isEmpty else { return }
    let batches = pending
    pending.removeAll(keepingCapacity: true)
    let definition = self.definition
    let results = Mutex<[BatchOutput?]>(Array(repeating: nil, count: batches.count))
    DispatchQueue.concurrentPerform(iterations: batches.count) { i in
      let out = Self.evaluate(definition, batches[i])
      results.withLock { $0[i] = out }
    }
    let outputs = results.withLock { $0 }
    for out in outputs { try deliver(out!, onRow) }
  }

  func deliver(_ out: BatchOutput, _ onRow: (ViewRow) throws -> Void) throws {
    stats.resources += out.resources
    for r in out.rows {
      stats.rows += 1
      try onRow(ViewRow(values: r))
    }
    if let failure = out.failure { throw KitError.failed(failure) }
  }

  static func evaluate(_ definition: ViewDefinition, _ batch: LineBatch) -> BatchOutput {
    var out = BatchOutput()
    batch.bytes.withUnsafeBufferPointer { all in
      var start = 0
      for end in batch.ends {
        do {
          out.rows += try definition.rows(forJSON: UnsafeBufferPointer(rebasing: all[start..<end]))
        } catch {
          out.failure = "\(batch.file): \(error)"
          return
        }
        out.resources += 1
        start = end
      }
    }
    return out
  }
}

/// Views kept in the workspace (`views/NAME.json`).
public struct SavedViews: Sendable {
  public let workspace: Workspace
  public init(workspace: Workspace) { self.workspace = workspace }

  public var folder: String { workspace.path + "/views" }

  public func path(_ name: String) -> String { folder + "/" + name + ".json" }

  static func checkName(_ name: String) throws {
    let ok = !name.isEmpty && name.count <= 64
      && name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" }
      && name.first != "-"
    guard ok else {
      throw KitError.invalidArgument("invalid view name '\(name)': use a-z, 0-9, _ and - (up to 64)")
    }
  }

  /// Validates the view file and copies it into the workspace under `name`.
  @discardableResult
  public func save(name: String, from file: String) throws -> ViewSpec {
    try Self.checkName(name)
    let spec = try ViewSpec(path: file)
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let data = FileManager.default.contents(atPath: file) ?? Data()
    try data.write(to: URL(fileURLWithPath: path(name)), options: .atomic)
    return spec
  }

  /// Saved view names, sorted.
  public func names() -> [String] {
    let files = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
    return files.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
  }

  public func load(_ name: String) throws -> ViewSpec {
    try Self.checkName(name)
    guard FileManager.default.fileExists(atPath: path(name)) else {
      throw KitError.invalidArgument(
        "no saved view '\(name)' (saved: \(names().joined(separator: ", "))); use `view save \(name) FILE.json`")
    }
    return try ViewSpec(path: path(name))
  }
}

func sha256Hex(_ data: Data) -> String {
  SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
}

extension ViewRow {
  /// Typed cells for SQLite: booleans 0/1, integers, decimals as REAL, text, collections as JSON.
  public var analysisValues: [AnalysisValue] {
    values.map { v in
      switch v {
      case .null: return .null
      case .bool(let b): return .integer(b ? 1 : 0)
      case .integer(let i): return .integer(Int64(i))
      case .decimal(let d, _): return .real(d)
      case .string(let s): return .text(s)
      case .array, .object: return .text(v.jsonText)
      }
    }
  }
}

/// Materialized views and read-only SQL over them, per cohort, in `<workspace>/analysis/<cohort>.sqlite`
/// (a database of its own beside the store: the store's tables are never touched).
public enum ViewAnalysis {
  public static func databasePath(workspace: Workspace, cohort: String) -> String {
    workspace.path + "/analysis/" + cohort + ".sqlite"
  }

  /// Runs the view at a snapshot into table `name` (replaced), typed by the view's column types.
  public static func materialize(
    _ spec: ViewSpec, name: String, store: Store, workspace: Workspace, cohort: String, snapshot: ExportRecord
  ) throws -> MaterializedView {
    let path = databasePath(workspace: workspace, cohort: cohort)
    try FileManager.default.createDirectory(
      atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    let db = try AnalysisDatabase(path: path)
    var meta = MaterializedView(
      table: name, cohort: cohort, snapshotSeq: snapshot.seq, exportID: snapshot.id!,
      transactionTime: snapshot.transactionTime, viewSHA256: spec.sha256, rows: 0,
      createdAt: isoNow())
    let columns = spec.definition.columns.map { (name: $0.name, sqlType: $0.sqlType) }
    meta.rows = try db.materialize(meta, columns: columns) { insert in
      _ = try ViewRunner.run(spec, store: store, workspace: workspace, cohort: cohort, at: snapshot.id!) { row in
        try insert(row.analysisValues)
      }
    }
    return meta
  }

  /// One read-only statement over the cohort's materialized views.
  /// Each column's kind comes from SQLite's value types (integers stay integers, text stays text).
  public static func query(
    workspace: Workspace, cohort: String, sql: String
  ) throws -> (columns: [String], kinds: [ColumnKind], rows: [[String]]) {
    let path = databasePath(workspace: workspace, cohort: cohort)
    guard FileManager.default.fileExists(atPath: path) else {
      throw KitError.failed("cohort '\(cohort)' has no materialized views yet; run `view materialize NAME \(cohort)` first")
    }
    let result = try AnalysisDatabase(path: path, readOnly: true).query(sql)
    let kinds = result.storage.map { storage -> ColumnKind in
      switch storage {
      case .integer: return .integer
      case .real: return .number
      case .text, .blob, .mixed, .null: return .text
      }
    }
    return (result.columns, kinds, result.rows)
  }

  /// Tables materialized for a cohort, with their snapshots.
  public static func materialized(workspace: Workspace, cohort: String) throws -> [MaterializedView] {
    let path = databasePath(workspace: workspace, cohort: cohort)
    guard FileManager.default.fileExists(atPath: path) else { return [] }
    return try AnalysisDatabase(path: path, readOnly: true).materialized()
  }

  /// Rows added and removed between two snapshots (multisets: a duplicated row counts twice),
  /// each list sorted by the row's JSON text.
  public static func diff(
    _ spec: ViewSpec, store: Store, workspace: Workspace, cohort: String, from a: Int64, to b: Int64
  ) throws -> (added: [ViewRow], removed: [ViewRow]) {
    let names = spec.columnNames
    func collect(_ at: Int64) throws -> [String: (Int, ViewRow)] {
      var out: [String: (Int, ViewRow)] = [:]
      _ = try ViewRunner.run(spec, store: store, workspace: workspace, cohort: cohort, at: at) { row in
        let key = row.jsonObject(columns: names)
        out[key, default: (0, row)].0 += 1
      }
      return out
    }
    let before = try collect(a)
    let after = try collect(b)
    var added: [(String, ViewRow)] = []
    var removed: [(String, ViewRow)] = []
    for (key, (n, row)) in after {
      let m = before[key]?.0 ?? 0
      if n > m { added += Array(repeating: (key, row), count: n - m) }
    }
    for (key, (n, row)) in before {
      let m = after[key]?.0 ?? 0
      if n > m { removed += Array(repeating: (key, row), count: n - m) }
    }
    return (added.sorted { $0.0 < $1.0 }.map(\.1), removed.sorted { $0.0 < $1.0 }.map(\.1))
  }
}
