import Foundation
import GRDB
import Synchronization

/// Loads `--data DIR` into the state database: NDJSON files (one resource type per file) or Synthea
/// transaction Bundles (one patient per file; `urn:uuid:` and conditional references rewritten to `Type/id`).
enum DataImporter {
  static func importDirectory(_ path: String, into db: Database, lastUpdated: Int) throws -> Int {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
      throw BulkServerError.dataDirectory(path: path, reason: "no such folder")
    }
    var files: [String] = []
    if let walker = FileManager.default.enumerator(atPath: path) {
      while let rel = walker.nextObject() as? String {
        if rel.hasSuffix(".json") || rel.hasSuffix(".ndjson") { files.append(path + "/" + rel) }
      }
    }
    files.sort()
    guard !files.isEmpty else { throw BulkServerError.dataDirectory(path: path, reason: "it has no .json or .ndjson files") }
    let ndjson = files.filter { $0.hasSuffix(".ndjson") }
    if !ndjson.isEmpty {
      return try importNDJSON(ndjson, db: db, lastUpdated: lastUpdated)
    }
    return try importBundles(files, db: db, lastUpdated: lastUpdated)
  }

  static func stamp(_ r: JSON, lastUpdated: Int) -> (JSON, Int) {
    let t = r["meta"]?["lastUpdated"]?.stringValue.flatMap { Instant.parse($0) } ?? lastUpdated
    var meta = r["meta"] ?? .object([])
    meta = meta.setting("versionId", .string("1")).setting("lastUpdated", .string(Instant.format(t)))
    return (r.setting("meta", meta, after: "id"), t)
  }

  static func insert(_ db: Database, patient: Int, _ r: JSON, lastUpdated: Int) throws {
    guard let type = r["resourceType"]?.stringValue, let id = r["id"]?.stringValue else { return }
    let (body, t) = stamp(r, lastUpdated: lastUpdated)
    try db.execute(
      sql: "INSERT INTO base(patient, type, id, last_updated, json) VALUES (?, ?, ?, ?, ?)",
      arguments: [patient, type, id, t, body.serializedString()])
  }

  // MARK: Synthea bundles

  static func rewrite(_ value: JSON, _ map: [String: String]) -> JSON {
    switch value {
    case .object(let members):
      return .object(
        members.map { k, v in
          if k == "reference", let s = v.stringValue, let target = map[s] { return (k, .string(target)) }
          return (k, rewrite(v, map))
        })
    case .array(let items): return .array(items.map { rewrite($0, map) })
    default: return value
    }
  }

  struct PreparedBundle: Sendable {
    var isPatient: Bool
    /// (type, id, lastUpdated, JSON text)
    var rows: [(String, String, Int, String)]
    /// Conditional-reference targets this bundle defines (`Type?identifier=system|value` → `Type/id`).
    var identifiers: [String: String]
  }

  /// Parses one Bundle file and rewrites its references (pure; runs in parallel).
  static func prepare(_ file: String, conditional: [String: String], lastUpdated: Int) throws -> PreparedBundle? {
    guard let data = FileManager.default.contents(atPath: file) else {
      throw BulkServerError.dataDirectory(path: file, reason: "cannot read the file")
    }
    let bundle: JSON
    do { bundle = try JSON.parse(data) } catch {
      throw BulkServerError.dataDirectory(path: file, reason: "\(error)")
    }
    guard let kind = bundle["resourceType"]?.stringValue else {
      throw BulkServerError.dataDirectory(path: file, reason: "not a FHIR resource")
    }
    // Other resources beside the Bundles (Synthea writes a Group of its patients) are not served:
    // this server derives its Groups from the data.
    guard kind == "Bundle" else { return nil }
    var map = conditional
    var identifiers: [String: String] = [:]
    var resources: [JSON] = []
    for entry in bundle["entry"]?.arrayValue ?? [] {
      guard let r = entry["resource"], let type = r["resourceType"]?.stringValue, let id = r["id"]?.stringValue else {
        continue
      }
      if let full = entry["fullUrl"]?.stringValue { map[full] = "\(type)/\(id)" }
      for ident in r["identifier"]?.arrayValue ?? [] {
        if let s = ident["system"]?.stringValue, let v = ident["value"]?.stringValue {
          map["\(type)?identifier=\(s)|\(v)"] = "\(type)/\(id)"
          identifiers["\(type)?identifier=\(s)|\(v)"] = "\(type)/\(id)"
        }
      }
      resources.append(r)
    }
    let isPatient = resources.contains { $0["resourceType"]?.stringValue == "Patient" }
    var rows: [(String, String, Int, String)] = []
    for r in resources {
      let (body, t) = stamp(rewrite(r, map), lastUpdated: lastUpdated)
      rows.append((r["resourceType"]?.stringValue ?? "", r["id"]?.stringValue ?? "", t, body.serializedString()))
    }
    return PreparedBundle(isPatient: isPatient, rows: rows, identifiers: identifiers)
  }

  static func importBundles(_ files: [String], db: Database, lastUpdated: Int) throws -> Int {
    // Supporting bundles (practitioners, hospitals) first, so conditional references resolve.
    func isSupport(_ f: String) -> Bool {
      let name = (f as NSString).lastPathComponent
      return name.hasPrefix("practitionerInformation") || name.hasPrefix("hospitalInformation")
    }
    var conditional: [String: String] = [:]
    var patients = 0
    func store(_ b: PreparedBundle) throws {
      let index = b.isPatient ? patients : -1
      for (type, id, t, text) in b.rows {
        try db.execute(
          sql: "INSERT INTO base(patient, type, id, last_updated, json) VALUES (?, ?, ?, ?, ?)",
          arguments: [index, type, id, t, text])
      }
      if b.isPatient { patients += 1 }
    }
    for file in files.filter(isSupport) {
      if let b = try prepare(file, conditional: [:], lastUpdated: lastUpdated) {
        conditional.merge(b.identifiers) { a, _ in a }
        try store(b)
      }
    }
    // Patient bundles: parsed in parallel, a few at a time (bounded memory), stored in file order.
    let rest = files.filter { !isSupport($0) }
    let width = max(2, ProcessInfo.processInfo.activeProcessorCount * 2)
    var offset = 0
    while offset < rest.count {
      let chunk = Array(rest[offset..<min(rest.count, offset + width)])
      let results = Mutex<[Int: Result<PreparedBundle?, any Error>]>([:])
      let shared = conditional
      DispatchQueue.concurrentPerform(iterations: chunk.count) { i in
        let r = Result { try prepare(chunk[i], conditional: shared, lastUpdated: lastUpdated) }
        results.withLock { $0[i] = r }
      }
      let done = results.withLock { $0 }
      for i in 0..<chunk.count {
        if let b = try done[i]?.get() { try store(b) }
      }
      offset += chunk.count
    }
    guard patients > 0 else { throw BulkServerError.dataDirectory(path: files[0], reason: "no Patient resources found") }
    return patients
  }

  // MARK: NDJSON

  static func forEachLine(_ path: String, _ body: (Int, [UInt8]) throws -> Void) throws {
    guard let handle = FileHandle(forReadingAtPath: path) else {
      throw BulkServerError.dataDirectory(path: path, reason: "cannot open the file")
    }
    defer { try? handle.close() }
    var pending: [UInt8] = []
    var lineNumber = 0
    while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
      pending.append(contentsOf: chunk)
      var start = 0
      while let nl = pending[start...].firstIndex(of: 0x0A) {
        lineNumber += 1
        let line = Array(pending[start..<nl])
        if !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { try body(lineNumber, line) }
        start = nl + 1
      }
      pending.removeFirst(start)
    }
    if !pending.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { try body(lineNumber + 1, pending) }
  }

  static func importNDJSON(_ files: [String], db: Database, lastUpdated: Int) throws -> Int {
    try db.execute(sql: "CREATE TEMP TABLE IF NOT EXISTS import_patients(id TEXT PRIMARY KEY, idx INTEGER NOT NULL)")
    var patients = 0
    var others: [String] = []
    for file in files {
      var first: JSON? = nil
      try forEachLine(file) { _, line in
        if first == nil { first = try? JSON.parse(line) }
      }
      if first?["resourceType"]?.stringValue == "Patient" {
        try forEachLine(file) { n, line in
          guard let r = try? JSON.parse(line), let id = r["id"]?.stringValue else {
            throw BulkServerError.dataDirectory(path: file, reason: "line \(n) is not a FHIR resource with an id")
          }
          try db.execute(sql: "INSERT OR IGNORE INTO import_patients(id, idx) VALUES (?, ?)", arguments: [id, patients])
          try insert(db, patient: patients, r, lastUpdated: lastUpdated)
          patients += 1
        }
      } else {
        others.append(file)
      }
    }
    guard patients > 0 else { throw BulkServerError.dataDirectory(path: files[0], reason: "no Patient NDJSON file found") }
    for file in others {
      try forEachLine(file) { n, line in
        guard let r = try? JSON.parse(line), r["resourceType"]?.stringValue != nil else {
          throw BulkServerError.dataDirectory(path: file, reason: "line \(n) is not a FHIR resource")
        }
        var index = -1
        for field in ["subject", "patient", "beneficiary"] {
          if let ref = r[field]?["reference"]?.stringValue, ref.hasPrefix("Patient/") {
            let id = String(ref.dropFirst(8))
            if let i = try Int.fetchOne(db, sql: "SELECT idx FROM import_patients WHERE id = ?", arguments: [id]) {
              index = i
              break
            }
          }
        }
        try insert(db, patient: index, r, lastUpdated: lastUpdated)
      }
    }
    try db.execute(sql: "DROP TABLE import_patients")
    return patients
  }
}
