import Foundation
import NDJSON

/// Error files (C40): NDJSON OperationOutcomes.
enum ErrorFiles {
  /// True when an error file holds an issue of severity error or fatal.
  static func hasErrors(path: String) throws -> Bool {
    var found = false
    try NDJSONLines.forEachObject(path: path) { object, _ in
      if found { return }
      if let issues = object["issue"] as? [[String: Any]],
        issues.contains(where: { ["error", "fatal"].contains($0["severity"] as? String ?? "") })
      {
        found = true
      }
    }
    return found
  }
}

/// `deleted` files (C54): NDJSON Bundles whose entries carry `request.method` DELETE and `request.url` `Type/id`.
/// Parsed strictly: an entry without a usable URL is bad data, named by file and line, never a crash.
enum DeletedFiles {
  struct Failure: Error, CustomStringConvertible {
    var file: String
    var line: Int
    var reason: String
    var description: String { "\((file as NSString).lastPathComponent) line \(line): \(reason)" }
  }

  static func read(path: String) throws -> [(type: String, id: String)] {
    var deletes: [(type: String, id: String)] = []
    try NDJSONLines.forEachObject(path: path) { bundle, line in
      guard bundle["resourceType"] as? String == "Bundle" else {
        throw Failure(file: path, line: line, reason: "a deleted file holds something other than a Bundle")
      }
      for entry in bundle["entry"] as? [[String: Any]] ?? [] {
        guard let request = entry["request"] as? [String: Any] else {
          throw Failure(file: path, line: line, reason: "a deleted entry has no request")
        }
        guard (request["method"] as? String)?.uppercased() == "DELETE" else { continue }
        guard let url = request["url"] as? String, let pair = parse(url) else {
          throw Failure(
            file: path, line: line,
            reason: "a deleted entry's request.url is not Type/id (\(Sanitize.line(String(describing: request["url"] ?? "nothing"))))")
        }
        deletes.append(pair)
      }
    }
    return deletes
  }

  /// `Type/id`, `https://x/fhir/Type/id`, `Type/id/_history/3` → (Type, id).
  static func parse(_ url: String) -> (type: String, id: String)? {
    let path = url.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
    var parts = path.split(separator: "/").map(String.init)
    if parts.count >= 4, parts[parts.count - 2] == "_history" { parts.removeLast(2) }
    guard parts.count >= 2 else { return nil }
    let type = parts[parts.count - 2]
    let id = parts[parts.count - 1]
    guard let first = type.unicodeScalars.first, ("A"..."Z").contains(first), !id.isEmpty else { return nil }
    return (type, id)
  }
}

/// Small NDJSON files (error and deleted files) read one decoded object per line, in one pass.
enum NDJSONLines {
  static func forEachObject(path: String, _ body: ([String: Any], Int) throws -> Void) throws {
    var pending = Data()
    var lineNumber = 0
    func emit(_ line: Data) throws {
      lineNumber += 1
      if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { return }
      if let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any] { try body(object, lineNumber) }
    }
    try NDJSONFile.readChunks(path: path) { chunk in
      pending.append(contentsOf: chunk)
      while let newline = pending.firstIndex(of: 0x0A) {
        try emit(pending[pending.startIndex..<newline])
        pending.removeSubrange(pending.startIndex...newline)
      }
    }
    if !pending.isEmpty { try emit(pending) }
  }
}

/// Text from servers and files made safe for a terminal and for one-line messages: control characters
/// (ESC, C0, C1, DEL) are shown escaped, never interpreted.
public enum Sanitize {
  /// One line: newlines and tabs become spaces, other control characters are escaped.
  public static func line(_ text: String) -> String { clean(text, keepNewlines: false) }

  /// Several lines: newlines and tabs stay, other control characters are escaped.
  public static func text(_ text: String) -> String { clean(text, keepNewlines: true) }

  static func clean(_ text: String, keepNewlines: Bool) -> String {
    if !text.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F..<0xA0).contains($0.value) }) { return text }
    var out = ""
    out.reserveCapacity(text.count)
    for scalar in text.unicodeScalars {
      switch scalar.value {
      case 0x09, 0x0A: out.unicodeScalars.append(keepNewlines ? scalar : " ")
      case 0x0D: out.append(keepNewlines ? "" : " ")
      case 0x00..<0x20, 0x7F, 0x80..<0xA0: out += String(format: "\\u{%02X}", scalar.value)
      default: out.unicodeScalars.append(scalar)
      }
    }
    return out
  }
}
