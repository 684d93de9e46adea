// log.ndjson in the bulk-data-client "export log items" format:
// {"exportId","timestamp","eventId","eventDetail"} per line, with eventIds kickoff,
// status_progress, status_complete, manifest_complete, download_request, download_complete,
// download_error, export_complete.
import CohortBasics
import FHIRBulk
import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// A minimal JSON value with deterministic output (keys in insertion order).
public enum LogJSON: Sendable, Equatable {
  case null
  case bool(Bool)
  case int(Int64)
  case double(Double)
  case string(String)
  case array([LogJSON])
  case object([(String, LogJSON)])

  public static func == (a: LogJSON, b: LogJSON) -> Bool { a.text == b.text }

  static func str(_ s: String?) -> LogJSON { s.map { .string($0) } ?? .null }

  public var text: String {
    switch self {
    case .null: return "null"
    case .bool(let b): return b ? "true" : "false"
    case .int(let i): return String(i)
    case .double(let d): return d.isFinite ? String(d) : "null"
    case .string(let s): return Self.quote(s)
    case .array(let a): return "[" + a.map(\.text).joined(separator: ",") + "]"
    case .object(let o): return "{" + o.map { Self.quote($0.0) + ":" + $0.1.text }.joined(separator: ",") + "}"
    }
  }

  static func quote(_ s: String) -> String { JSONString.quote(s) }
}

public final class ExportLogWriter: Sendable {
  public let path: String
  public let exportId: String
  private let metadata: [(String, String)]
  private let fd: Mutex<Int32>

  /// Appends to `path` (created if missing). `metadata` pairs are added to every line, first.
  public init(path: String, exportId: String? = nil, metadata: [(String, String)] = []) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw BulkError.io(path: path, message: String(cString: strerror(errno))) }
    self.path = path
    self.fd = Mutex(fd)
    self.metadata = metadata
    self.exportId = exportId ?? (0..<10).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
  }

  deinit { close() }

  public func close() {
    fd.withLock { fd in
      if fd >= 0 { _ = Glibc_close(fd) }
      fd = -1
    }
  }

  /// Writes the event if it is one of the log's event ids; other events are ignored.
  public func handle(_ event: BulkEvent) {
    guard let (id, detail) = Self.item(for: event) else { return }
    let line = self.line(eventId: id, detail: detail, date: Date())
    fd.withLock { fd in
      guard fd >= 0 else { return }
      let bytes = Array((line + "\n").utf8)
      var off = 0
      while off < bytes.count {
        let n = bytes.withUnsafeBytes { b in b.baseAddress.map { write(fd, $0 + off, b.count - off) } ?? -1 }
        if n < 0 {
          if errno == EINTR { continue }
          return
        }
        off += n
      }
    }
  }

  func line(eventId: String, detail: LogJSON, date: Date) -> String {
    var fields: [(String, LogJSON)] = metadata.map { ($0.0, .string($0.1)) }
    fields.append(("exportId", .string(exportId)))
    fields.append(("timestamp", .string(Self.timestamp(date))))
    fields.append(("eventId", .string(eventId)))
    fields.append(("eventDetail", detail))
    return LogJSON.object(fields).text
  }

  static func timestamp(_ d: Date) -> String { isoUTC(d, milliseconds: true) }

  /// Event → (eventId, eventDetail), following bulk-data-client's logger.
  public static func item(for event: BulkEvent) -> (String, LogJSON)? {
    switch event {
    case .kickoff(let k):
      return (
        "kickoff",
        .object([
          ("exportUrl", .string(k.url)),
          ("errorCode", k.status >= 400 ? .int(Int64(k.status)) : .null),
          ("errorBody", .str(k.status >= 400 ? k.errorBody : nil)),
          ("softwareName", .str(k.softwareName)),
          ("softwareVersion", .str(k.softwareVersion)),
          ("softwareReleaseDate", .str(k.softwareReleaseDate)),
          ("fhirVersion", .str(k.fhirVersion)),
          ("requestParameters", .object(k.parameters.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
        ]))
    case .statusProgress(let xProgress, let retryAfter, _):
      return ("status_progress", .object([("body", .null), ("xProgress", .str(xProgress)), ("retryAfter", .str(retryAfter))]))
    case .statusComplete(let t):
      return ("status_complete", .object([("transactionTime", .string(t))]))
    case .manifestComplete(let s):
      return (
        "manifest_complete",
        .object([
          ("transactionTime", .string(s.transactionTime)),
          ("totalOutputFileCount", .int(Int64(s.outputFiles))),
          ("totalDeletedFileCount", .int(Int64(s.deletedFiles))),
          ("totalErrorFileCount", .int(Int64(s.errorFiles))),
          ("totalManifests", .int(Int64(s.pages))),
        ]))
    case .downloadRequest(let url, let kind, let type):
      return ("download_request", .object([("fileUrl", .string(url)), ("itemType", .string(kind.rawValue)), ("resourceType", .string(type))]))
    case .downloadComplete(let f):
      return (
        "download_complete",
        .object([("fileUrl", .string(f.url)), ("resourceCount", .int(Int64(f.lines))), ("fileSize", .int(f.bytes))]))
    case .downloadError(let url, let message):
      return ("download_error", .object([("fileUrl", .string(url)), ("message", .string(message))]))
    case .exportComplete(let t):
      return (
        "export_complete",
        .object([
          ("files", .int(Int64(t.files))), ("resources", .int(Int64(t.resources))), ("bytes", .int(t.bytes)),
          ("attachments", .int(0)), ("duration", .int(Int64((t.seconds * 1000).rounded()))),
        ]))
    case .retry, .warning, .information, .downloadProgress:
      return nil
    }
  }
}

@inline(__always) private func Glibc_close(_ fd: Int32) -> Int32 { close(fd) }
