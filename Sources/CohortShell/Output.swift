import CohortBasics
import CohortKit
import Foundation

/// Output formats of every command that prints results.
public enum OutputFormat: String, CaseIterable, Sendable {
  case table, plain, json, csv
}

/// A result table: what commands return and reporters render. Every column has a kind, so `--format json` writes
/// counts as numbers and names and ids as strings, whatever they look like (a cohort named `123` stays "123").
public struct Table: Sendable, Equatable {
  public typealias Kind = ColumnKind

  public var columns: [String]
  public var kinds: [Kind]
  public var rows: [[String]]

  /// A table whose columns named in `integers` hold counts; every other column is text.
  public init(columns: [String], rows: [[String]], integers: Set<String> = []) {
    self.columns = columns
    self.rows = rows
    self.kinds = columns.map { integers.contains($0) ? .integer : .text }
  }

  /// A table with one kind per column (e.g. from SQLite's value types).
  public init(columns: [String], kinds: [Kind], rows: [[String]]) {
    precondition(kinds.count == columns.count, "one kind per column")
    self.columns = columns
    self.kinds = kinds
    self.rows = rows
  }

  /// Renders for a terminal (box-less aligned columns with a rule) or plain (tab-separated).
  public func render(_ format: OutputFormat) -> String {
    // Text from servers never reaches the terminal raw: control characters are shown escaped.
    let rows = format == .json ? self.rows : self.rows.map { $0.map(Sanitize.line) }
    switch format {
    case .table:
      var widths = columns.map { $0.count }
      for row in rows {
        for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
      }
      func line(_ cells: [String]) -> String {
        var out = ""
        for (i, cell) in cells.enumerated() {
          let isLast = i == cells.count - 1
          out += isLast ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) + "  "
        }
        return out
      }
      var lines = [line(columns), line(widths.map { String(repeating: "-", count: $0) })]
      lines += rows.map(line)
      return lines.joined(separator: "\n") + "\n"
    case .plain:
      return rows.map { $0.joined(separator: "\t") }.joined(separator: "\n") + (rows.isEmpty ? "" : "\n")
    case .csv:
      func field(_ s: String) -> String {
        s.contains(where: { ",\"\n\r".contains($0) }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
      }
      return ([columns] + rows).map { $0.map(field).joined(separator: ",") }.joined(separator: "\n") + "\n"
    case .json:
      let objects = rows.map { row in
        Dictionary(uniqueKeysWithValues: zip(columns.indices, row).map { (columns[$0.0], Self.jsonValue($0.1, kinds[$0.0])) })
      }
      return JSON.encode(objects) + "\n"
    }
  }

  /// A cell as JSON, by its column's kind: never a guess from how the text looks.
  static func jsonValue(_ s: String, _ kind: Kind) -> JSON.Value {
    if s.isEmpty { return .null }
    switch kind {
    case .text: return .string(s)
    case .integer: return Int64(s).map { .number(Double($0)) } ?? .null
    case .number: return Double(s).map { .number($0) } ?? .null
    case .boolean: return s == "true" ? .bool(true) : s == "false" ? .bool(false) : .null
    case .json: return .raw(s)
    }
  }
}

/// A minimal ordered JSON writer (stable key order for golden transcripts).
public enum JSON {
  public indirect enum Value: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([Value])
    case object([(String, Value)])
    /// JSON text written as it is (a view's collection cell, already JSON).
    case raw(String)

    public static func == (a: Value, b: Value) -> Bool { JSON.encode(a) == JSON.encode(b) }
  }

  public static func encode(_ rows: [[String: Value]]) -> String {
    encode(.array(rows.map { .object($0.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }) }))
  }

  public static func encode(_ value: Value) -> String {
    switch value {
    case .null: return "null"
    case .bool(let b): return b ? "true" : "false"
    case .number(let d):
      if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
      return String(d)
    case .string(let s): return quote(s)
    case .raw(let text): return text
    case .array(let items): return "[" + items.map(encode).joined(separator: ",") + "]"
    case .object(let pairs): return "{" + pairs.map { quote($0.0) + ":" + encode($0.1) }.joined(separator: ",") + "}"
    }
  }

  public static func quote(_ s: String) -> String { JSONString.quote(s) }
}
