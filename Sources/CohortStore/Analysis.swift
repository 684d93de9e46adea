import Foundation
import GRDB

/// Where one live resource version's JSON is (a line of a file in the cohort's folder).
public struct ResourceLocation: Sendable, Equatable {
  public var file: String
  public var offset: Int64
  public var length: Int
}

extension Store {
  /// Calls `body` for every file holding live versions of `type` in the cohort at snapshot
  /// `exportID`, with those versions' (offset, length) in ascending offset order. Files come in
  /// name order, so a reader streams each file once.
  public func forEachLiveFile(
    cohort: String, type: String, at exportID: Int64,
    _ body: (_ file: String, _ lines: [(offset: Int64, length: Int)]) throws -> Void
  ) throws {
    try read { db in
      let cursor = try Row.fetchCursor(
        db,
        sql: """
          SELECT file, offset, length FROM resources
          WHERE cohort = ? AND type = ? AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)
          ORDER BY file, offset
          """, arguments: [cohort, type, exportID, exportID])
      var current: String?
      var lines: [(offset: Int64, length: Int)] = []
      while let row = try cursor.next() {
        let file: String = row[0]
        if file != current {
          if let current, !lines.isEmpty { try body(current, lines) }
          current = file
          lines.removeAll(keepingCapacity: true)
        }
        lines.append((row[1], row[2]))
      }
      if let current, !lines.isEmpty { try body(current, lines) }
    }
  }
}
