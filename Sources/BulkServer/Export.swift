import Foundation
import GRDB

enum ExportLevel: Sendable, Equatable {
  case system
  case patient
  case group(GroupKind)
}

/// A validated kick-off request.
struct ExportParameters: Sendable {
  var level: ExportLevel
  var types: [String]
  var since: Int?
  var until: Int?
  var typeFilters: [TypeFilter] = []
  /// Element names per type ("*" applies to every type); empty means no _elements.
  var elements: [String: Set<String>] = [:]
  var patients: Set<String>? = nil
  var lenient = false
  /// Written as informational OperationOutcomes into the error file.
  var notes: [String] = []
  /// Written as warning OperationOutcomes into the error file (e.g. `patient=` ignored).
  var warnings: [String] = []

  /// Parses and validates the parameters of a kick-off (query items for GET, Parameters for POST).
  static func parse(
    level: ExportLevel, items: [(String, String)], isPost: Bool, lenient: Bool, knownTypes: [String], now: Int
  ) throws(RequestError) -> ExportParameters {
    let compartment = knownTypes
    var p = ExportParameters(level: level, types: compartment)
    p.lenient = lenient
    var requestedTypes: [String] = []
    var sawType = false
    for (name, rawValue) in items {
      let value = rawValue.trimmingCharacters(in: .whitespaces)
      switch name {
      case "_type":
        sawType = true
        for t in value.split(separator: ",").map({ String($0).trimmingCharacters(in: .whitespaces) }) where !t.isEmpty {
          guard knownTypes.contains(t) else {
            if lenient {
              p.notes.append("_type \(t) is not supported by this server and was ignored")
              continue
            }
            throw .badRequest("_type '\(t)' is not a resource type this server exports (supported: \(knownTypes.joined(separator: ", ")))")
          }
          if !requestedTypes.contains(t) { requestedTypes.append(t) }
        }
      case "_since", "_until":
        let text = value.replacingOccurrences(of: " ", with: "+")
        guard let t = Instant.parse(text) else {
          throw .badRequest("\(name) '\(rawValue)' is not a FHIR instant (e.g. 2026-01-05T09:00:00Z, with seconds and a time zone)")
        }
        if name == "_since" {
          guard t <= now else {
            throw .badRequest("_since '\(text)' is in the future (server time is \(Instant.format(now)))")
          }
          p.since = t
        } else {
          p.until = t
        }
      case "_outputFormat":
        // A literal '+' in a query reads as a space (form encoding); %2B is a '+'. Accept both.
        let format = value.replacingOccurrences(of: " ", with: "+")
        guard ["application/fhir+ndjson", "application/ndjson", "ndjson"].contains(format) else {
          throw .badRequest("_outputFormat '\(value)' is not supported; use application/fhir+ndjson, application/ndjson or ndjson")
        }
      case "_typeFilter":
        // A comma-separated list of queries (and the parameter may repeat); filters of one type are OR-ed.
        for filter in try Filters.parseList(value, knownTypes: knownTypes) {
          let unsupported = Filters.unsupported(filter)
          if !unsupported.isEmpty {
            let shown = filter.type + "?" + filter.criteria.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
            if lenient {
              p.notes.append("_typeFilter '\(shown)': parameters \(unsupported.joined(separator: ", ")) are not supported and were ignored")
              let kept = filter.criteria.filter { !unsupported.contains($0.0) }
              if !kept.isEmpty { p.typeFilters.append(TypeFilter(type: filter.type, criteria: kept)) }
              continue
            }
            throw .badRequest("_typeFilter '\(shown)' uses unsupported search parameters: \(unsupported.joined(separator: ", ")) (supported: \(Filters.supportedParameters.joined(separator: ", ")))")
          }
          p.typeFilters.append(filter)
        }
      case "_elements":
        for e in value.split(separator: ",").map({ String($0).trimmingCharacters(in: .whitespaces) }) where !e.isEmpty {
          let parts = e.split(separator: ".", maxSplits: 1).map(String.init)
          if parts.count == 2 {
            guard knownTypes.contains(parts[0]) else { throw .badRequest("_elements '\(e)' names an unsupported resource type") }
            p.elements[parts[0], default: []].insert(parts[1])
          } else {
            p.elements["*", default: []].insert(e)
          }
        }
      case "patient":
        guard isPost else {
          throw .badRequest("the patient parameter is only accepted in a POST kick-off (Parameters body)")
        }
        guard level != .system else { throw .badRequest("the patient parameter is not allowed on a system-level export") }
        let id = value.hasPrefix("Patient/") ? String(value.dropFirst(8)) : value
        guard !id.isEmpty, !id.contains("/") else { throw .badRequest("patient '\(value)' is not a Patient reference") }
        p.patients = (p.patients ?? []).union([id])
      case "includeAssociatedData", "organizeOutputBy", "_includeAssociatedData":
        if lenient {
          p.notes.append("\(name) is not supported and was ignored")
        } else {
          throw .notSupported("\(name) is not supported by this server")
        }
      case "allowPartialManifests":
        break
      default:
        if lenient {
          p.notes.append("parameter \(name) is not supported and was ignored")
        } else {
          throw .badRequest("unknown $export parameter '\(name)'")
        }
      }
    }
    if sawType {
      guard !requestedTypes.isEmpty else { throw .badRequest("_type names no supported resource type") }
      p.types = knownTypes.filter { requestedTypes.contains($0) }
    }
    if let s = p.since, let u = p.until, u < s {
      throw .badRequest("_until (\(Instant.format(u))) is before _since (\(Instant.format(s)))")
    }
    return p
  }

  func filters(for type: String) -> [TypeFilter] { typeFilters.filter { $0.type == type } }

  func includes(_ r: StoredResource, transactionTime: Int) -> Bool {
    if let since, r.lastUpdated <= since { return false }
    if let until, r.lastUpdated > until { return false }
    let fs = filters(for: r.type)
    if !fs.isEmpty && !fs.contains(where: { Filters.matches(r, $0) }) { return false }
    return true
  }

  func shaped(_ r: StoredResource) -> StoredResource {
    if elements.isEmpty { return r }
    let names = (elements["*"] ?? []).union(elements[r.type] ?? [])
    if names.isEmpty { return r }
    return Filters.subset(r, elements: names)
  }
}

/// One file written by an export.
struct ExportFile: Codable, Sendable {
  var kind: String  // output | deleted | error
  var type: String
  var name: String  // file name, e.g. Observation.2.ndjson
  var count: Int
  var bytes: Int
}

/// Streams NDJSON into numbered files per type, rolling over every `limit` lines.
final class NDJSONSink {
  let directory: String
  let limit: Int
  private var handles: [String: (fd: Int32, name: String, count: Int, bytes: Int, buffer: [UInt8])] = [:]
  private var fileNumbers: [String: Int] = [:]
  private(set) var files: [ExportFile] = []

  init(directory: String, limit: Int) {
    self.directory = directory
    self.limit = max(1, limit)
  }

  func write(kind: String, type: String, fileStem: String, line: [UInt8]) throws {
    let key = kind + "/" + type
    if handles[key] == nil || handles[key]!.count >= limit {
      try close(key: key, kind: kind, type: type)
      let n = (fileNumbers[key] ?? 0) + 1
      fileNumbers[key] = n
      let name = "\(fileStem).\(n).ndjson"
      let path = directory + "/" + name
      let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
      guard fd >= 0 else { throw BulkServerError.io(path: path, reason: String(cString: strerror(errno))) }
      handles[key] = (fd, name, 0, 0, [])
    }
    handles[key]!.buffer.append(contentsOf: line)
    handles[key]!.buffer.append(0x0A)
    handles[key]!.count += 1
    handles[key]!.bytes += line.count + 1
    if handles[key]!.buffer.count >= 1 << 18 { try flush(key) }
  }

  private func flush(_ key: String) throws {
    guard let h = handles[key], !h.buffer.isEmpty else { return }
    try h.buffer.withUnsafeBytes { raw in
      var off = 0
      while off < raw.count {
        let n = Foundation.write(h.fd, raw.baseAddress! + off, raw.count - off)
        if n <= 0 { throw BulkServerError.io(path: directory + "/" + h.name, reason: String(cString: strerror(errno))) }
        off += n
      }
    }
    handles[key]!.buffer.removeAll(keepingCapacity: true)
  }

  private func close(key: String, kind: String, type: String) throws {
    guard let h = handles[key] else { return }
    try flush(key)
    Foundation.close(h.fd)
    files.append(ExportFile(kind: kind, type: type, name: h.name, count: h.count, bytes: h.bytes))
    handles[key] = nil
  }

  func finish() throws -> [ExportFile] {
    for key in handles.keys.sorted() {
      let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
      try close(key: key, kind: parts[0], type: parts[1])
    }
    return files
  }

  func abandon() {
    for (_, h) in handles { Foundation.close(h.fd) }
    handles = [:]
  }
}

/// Fault switches that change the files an export writes.
struct ContentFaults: Sendable {
  var partialFailure = false
  var badLine: Faults.BadLine? = nil
  var missingId = false
  var emptyDeletedURL = false
  var escapes = false

  init(_ f: Faults) {
    partialFailure = f.partialFailure
    badLine = f.badLine
    missingId = f.missingId
    emptyDeletedURL = f.emptyDeletedURL
    escapes = f.escapes
  }
}

enum ExportWriter {
  /// Writes every file of an export at `transactionTime` into `directory`. Runs inside one read
  /// transaction, so later changes are invisible even without the time bound.
  static func run(
    _ db: Database, dataset: Dataset, params: ExportParameters, transactionTime: Int, directory: String,
    resourcesPerFile: Int, faults: ContentFaults, isCancelled: () -> Bool
  ) throws -> [ExportFile] {
    let sink = NDJSONSink(directory: directory, limit: resourcesPerFile)
    var wantTypes = Set(params.types)
    var failedType: String? = nil
    if faults.partialFailure, let last = params.types.last, params.types.count > 1 {
      failedType = last
      wantTypes.remove(last)
    }
    let supportingWanted = !wantTypes.isDisjoint(with: Generator.supportingTypes) || dataset.imported
    var badLineWritten = faults.badLine == nil
    var idDropped = Set<String>()  // types whose first line lost its id (missingId)
    func deletedBundle(_ url: String) -> JSON {
      .object([
        ("resourceType", .string("Bundle")),
        ("type", .string("transaction")),
        ("entry", .array([.object([("request", .object([("method", .string("DELETE")), ("url", .string(url))]))])])),
      ])
    }
    do {
      if faults.emptyDeletedURL, params.since != nil {
        try sink.write(kind: "deleted", type: "Bundle", fileStem: "deleted", line: deletedBundle("").serialized())
      }
      try dataset.forEachPatient(db, at: transactionTime, includeSupporting: supportingWanted) { index, merged in
        if isCancelled() { throw CancellationError() }
        if index >= 0 {
          switch params.level {
          case .group(let g): guard g.contains(merged) else { return }
          case .patient, .system: guard merged.exists else { return }
          }
          if let ids = params.patients {
            guard let pid = merged.patientID, ids.contains(pid) else { return }
          }
        } else if params.level != .system && !dataset.imported {
          // Supporting resources come with patient-level exports too, when asked for.
        }
        for r in merged.live where wantTypes.contains(r.type) && params.includes(r, transactionTime: transactionTime) {
          var shaped = params.shaped(r)
          if faults.missingId, !idDropped.contains(r.type) {
            idDropped.insert(r.type)
            shaped.json = shaped.json.removing("id")
          }
          try sink.write(kind: "output", type: r.type, fileStem: r.type, line: shaped.bytes())
          if !badLineWritten {
            badLineWritten = true
            let bad: [UInt8]
            switch faults.badLine {
            case .wrongType:
              let other = r.type == "Patient" ? "Observation" : "Patient"
              bad = JSON.object([("resourceType", .string(other)), ("id", .string("wrong-type-1"))]).serialized()
            case .invalidJSON, .none:
              bad = Array("{\"resourceType\":\"\(r.type)\",\"id\":\"broken-1\",".utf8)
            }
            try sink.write(kind: "output", type: r.type, fileStem: r.type, line: bad)
          }
        }
        if let since = params.since {
          // Every deletion after _since, also of resources created after it: a client may hold them from another
          // pull (a joiners' patient= export), and deleting what it never had is harmless.
          for d in merged.deleted where wantTypes.contains(d.type) && d.at > since {
            if let until = params.until, d.at > until { continue }
            let bundle = deletedBundle("\(d.type)/\(d.id)")
            try sink.write(kind: "deleted", type: "Bundle", fileStem: "deleted", line: bundle.serialized())
          }
        }
      }
      var notes = params.notes
      if let failedType {
        notes.append("failed to generate the \(failedType) resources of this export (simulated fault)")
      }
      for warning in params.warnings {
        let outcome = OperationOutcome.make(severity: "warning", code: "informational", diagnostics: warning)
        try sink.write(kind: "error", type: "OperationOutcome", fileStem: "error", line: outcome.serialized())
      }
      if faults.escapes {
        let outcome = OperationOutcome.make(
          severity: "warning", code: "informational", diagnostics: Faults.escapeText + "export finished (simulated fault)")
        try sink.write(kind: "error", type: "OperationOutcome", fileStem: "error", line: outcome.serialized())
      }
      for (i, note) in notes.enumerated() {
        let isFailure = failedType != nil && i == notes.count - 1
        let outcome = OperationOutcome.make(
          severity: isFailure ? "error" : "information", code: isFailure ? "exception" : "informational", diagnostics: note)
        try sink.write(kind: "error", type: "OperationOutcome", fileStem: "error", line: outcome.serialized())
      }
    } catch {
      sink.abandon()
      throw error
    }
    return try sink.finish()
  }

  /// Orders files for the manifest: output by the type order of the request, then deleted, then error.
  static func ordered(_ files: [ExportFile], types: [String]) -> [ExportFile] {
    func rank(_ f: ExportFile) -> (Int, Int, Int) {
      let kind = f.kind == "output" ? 0 : f.kind == "deleted" ? 1 : 2
      let t = types.firstIndex(of: f.type) ?? types.count
      let n = Int(f.name.split(separator: ".").dropLast().last ?? "0") ?? 0
      return (kind, t, n)
    }
    return files.sorted { rank($0) < rank($1) }
  }
}
