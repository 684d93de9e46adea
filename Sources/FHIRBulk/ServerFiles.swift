// Reading the small server files of an export after download: `deleted` Bundles (C54) and
// `error` OperationOutcomes (C39, C40). Both stream line by line and never trap on server input.
import Crypto
import Foundation
import NDJSON

/// A resource the server reports as deleted (C54).
public struct DeletedResource: Sendable, Hashable, Codable {
  public var type: String
  public var id: String

  public init(type: String, id: String) {
    self.type = type
    self.id = id
  }
}

/// Strict parser of `deleted` NDJSON files: each line a `Bundle` whose entries have
/// `request.method` DELETE and a `request.url` of `Type/id` — relative, absolute, or with
/// `/_history/v` — normalised to (type, id). Anything else is a data fault naming file and line.
public enum DeletedFile {
  /// Every deleted resource in the file at `path`; `name` (e.g. `deleted/Bundle.1.ndjson`) is
  /// used in error messages.
  public static func read(path: String, name: String? = nil, maxLineLength: Int = 64 << 20) throws -> [DeletedResource] {
    var out: [DeletedResource] = []
    try forEach(path: path, name: name, maxLineLength: maxLineLength) { out.append($0) }
    return out
  }

  /// Streams the deleted resources of the file at `path`, one at a time.
  public static func forEach(
    path: String, name: String? = nil, maxLineLength: Int = 64 << 20, _ body: (DeletedResource) throws -> Void
  ) throws {
    let label = name ?? (path as NSString).lastPathComponent
    try NDJSONLines.forEach(path: path, name: label, maxLineLength: maxLineLength) { line, number in
      for d in try parse(line: line, file: label, line: number) { try body(d) }
    }
  }

  /// The deleted resources of one NDJSON line (a Bundle); blank lines give none.
  public static func parse(line: Data, file: String, line number: Int) throws -> [DeletedResource] {
    func fault(_ reason: String) -> BulkError { .dataFault(file: file, line: number, reason: reason) }
    if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D || $0 == 0x0A }) { return [] }
    guard let object = try? JSONSerialization.jsonObject(with: line) else { throw fault("not valid JSON") }
    guard let bundle = object as? [String: Any] else { throw fault("not a JSON object") }
    guard bundle["resourceType"] as? String == "Bundle" else {
      throw fault("resourceType is \((bundle["resourceType"] as? String).map { "'\($0)'" } ?? "missing"), expected Bundle")
    }
    guard let rawEntries = bundle["entry"] else { return [] }
    guard let entries = rawEntries as? [Any] else { throw fault("entry is not an array") }
    var out: [DeletedResource] = []
    for (i, raw) in entries.enumerated() {
      let n = i + 1
      guard let entry = raw as? [String: Any] else { throw fault("entry \(n) is not an object") }
      guard let request = entry["request"] as? [String: Any] else { throw fault("entry \(n) has no request") }
      guard let method = request["method"] as? String, method.uppercased() == "DELETE" else {
        throw fault("entry \(n) has request.method \((request["method"] as? String).map { "'\($0)'" } ?? "missing"), expected DELETE")
      }
      guard let url = request["url"] as? String, !url.trimmingCharacters(in: .whitespaces).isEmpty else {
        throw fault("entry \(n) has an empty or missing request.url")
      }
      guard let resource = reference(fromRequestURL: url) else {
        throw fault("entry \(n) has request.url '\(url)', which is not Type/id")
      }
      out.append(resource)
    }
    return out
  }

  /// `Type/id` from a request URL: relative or absolute, optionally with `/_history/v`, a query
  /// or a fragment. Nil when it is not a resource type followed by a valid FHIR id.
  public static func reference(fromRequestURL url: String) -> DeletedResource? {
    var text = url.trimmingCharacters(in: .whitespaces)
    if let cut = text.firstIndex(where: { $0 == "?" || $0 == "#" }) { text = String(text[..<cut]) }
    if let scheme = text.range(of: "://") {
      // Absolute: keep the path only.
      let rest = text[scheme.upperBound...]
      guard let slash = rest.firstIndex(of: "/") else { return nil }
      text = String(rest[slash...])
    }
    let parts = text.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    guard parts.count >= 2 else { return nil }
    var typeIndex = parts.count - 2
    if parts.count >= 4, parts[parts.count - 2] == "_history" { typeIndex = parts.count - 4 }
    let type = parts[typeIndex]
    let id = parts[typeIndex + 1]
    guard FHIRResourceTypes.isSafeTypeName(type), isFHIRId(id) else { return nil }
    return DeletedResource(type: type, id: id)
  }

  /// `[A-Za-z0-9\-\.]{1,64}`.
  static func isFHIRId(_ id: String) -> Bool {
    let u = Array(id.utf8)
    guard (1...64).contains(u.count) else { return false }
    return u.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x2E }
  }
}

/// What an `error` file holds, by severity (C39, C40; issue 15: warnings shown once).
public struct OutcomeFileSummary: Sendable, Equatable {
  /// OperationOutcome lines read.
  public var outcomes = 0
  /// Issues of severity `error` or `fatal`.
  public var errorIssues = 0
  /// Issues of severity `warning` or `information`.
  public var noteIssues = 0
  /// Distinct error/fatal texts ("severity code: diagnostics", escaped), the first 100.
  public var errors: [String] = []
  /// Distinct warning/information issues, one OperationOutcome per issue (texts escaped), the first 100.
  public var notes: [OperationOutcome] = []

  /// True when the file holds an error or fatal issue: the export is partial (C40).
  public var hasErrors: Bool { errorIssues > 0 }

  public init() {}
}

public enum OperationOutcomeFile {
  /// Reads an error file line by line. Lines that are not OperationOutcomes are skipped (the
  /// download already verified their resourceType).
  public static func summarize(path: String, maxLineLength: Int = 64 << 20) throws -> OutcomeFileSummary {
    var s = OutcomeFileSummary()
    var seenErrors = Set<String>()
    var seenNotes = Set<String>()
    try NDJSONLines.forEach(path: path, name: (path as NSString).lastPathComponent, maxLineLength: maxLineLength) { line, _ in
      guard let outcome = OperationOutcome.decode(line) else { return }
      s.outcomes += 1
      for issue in outcome.issue {
        let severity = (issue.severity ?? "").lowercased()
        let text = TerminalText.escape(
          ([issue.severity, issue.code].compactMap { $0 }.joined(separator: " ") + (issue.message.map { ": " + $0 } ?? "")))
        switch severity {
        case "error", "fatal":
          s.errorIssues += 1
          if s.errors.count < 100, seenErrors.insert(text).inserted { s.errors.append(text) }
        case "warning", "information":
          s.noteIssues += 1
          if s.notes.count < 100, seenNotes.insert(text).inserted {
            var clean = issue
            clean.diagnostics = issue.diagnostics.map(TerminalText.escape)
            clean.details?.text = issue.details?.text.map(TerminalText.escape)
            s.notes.append(OperationOutcome(issue: [clean]))
          }
        default:
          break
        }
      }
    }
    return s
  }
}

/// Lines of a small NDJSON file, one at a time, with 1-based line numbers (blank lines included
/// in the numbering, so messages match an editor's).
enum NDJSONLines {
  static func forEach(path: String, name: String, maxLineLength: Int, _ body: (Data, Int) throws -> Void) throws {
    var pending = Data()
    var number = 0
    do {
      try NDJSONFile.readChunks(path: path) { chunk in
        pending.append(contentsOf: chunk)
        var start = pending.startIndex
        while let newline = pending[start...].firstIndex(of: 0x0A) {
          number += 1
          try body(Data(pending[start..<newline]), number)
          start = pending.index(after: newline)
        }
        pending.removeSubrange(pending.startIndex..<start)
        if pending.count > maxLineLength {
          throw BulkError.dataFault(file: name, line: number + 1, reason: "a line longer than \(maxLineLength) bytes")
        }
      }
    } catch let e as BulkError {
      throw e
    } catch let e as NDJSONError {
      throw BulkError.io(path: path, message: e.description)
    }
    if !pending.isEmpty {
      number += 1
      try body(pending, number)
    }
  }
}

/// Size and SHA-256 of a file as stored, to re-verify a recorded download before commit
/// (issue 11 item 4). Streams; the bytes are hashed as they are on disk.
public enum FileDigest {
  public static func sha256(path: String) throws -> (bytes: Int64, sha256: String) {
    guard let handle = FileHandle(forReadingAtPath: path) else {
      throw BulkError.io(path: path, message: "cannot open the file")
    }
    defer { try? handle.close() }
    var hasher = SHA256()
    var total: Int64 = 0
    while true {
      let chunk: Data
      do {
        chunk = try handle.read(upToCount: 4 << 20) ?? Data()
      } catch {
        throw BulkError.io(path: path, message: "cannot read the file")
      }
      if chunk.isEmpty { break }
      hasher.update(data: chunk)
      total += Int64(chunk.count)
    }
    return (total, hasher.finalize().map { String(format: "%02x", $0) }.joined())
  }

  /// True when the file at `path` still has the recorded size and SHA-256.
  public static func matches(path: String, bytes: Int64, sha256: String) -> Bool {
    guard let d = try? Self.sha256(path: path) else { return false }
    return d.bytes == bytes && d.sha256 == sha256.lowercased()
  }
}
