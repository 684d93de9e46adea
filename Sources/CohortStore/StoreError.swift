import CohortBasics
import Foundation
import GRDB

/// Errors from the workspace database. Each renders as one line that says what failed and what to do.
public enum StoreError: Error, CustomStringConvertible, Equatable, Sendable {
  /// The database was written by a newer cohort (it has migrations this binary does not know).
  case newerSchema(path: String, unknown: [String])
  /// The file exists but is not a SQLite database, or is damaged.
  case corrupt(path: String, reason: String)
  /// The workspace folder or database cannot be written.
  case notWritable(path: String, reason: String)
  /// A named object does not exist. `existing` lists what does, for the message.
  case notFound(kind: String, name: String, existing: [String])
  /// A named object already exists.
  case alreadyExists(kind: String, name: String)
  /// A name breaks the naming rule.
  case invalidName(kind: String, name: String, rule: String)
  /// The object is still used (e.g. a server with cohorts).
  case inUse(kind: String, name: String, reason: String)
  /// Any other SQLite failure, with SQLite's message (never statement arguments).
  case database(String)

  public var description: String {
    switch self {
    case .newerSchema(let path, let unknown):
      return
        "\(path) was written by a newer version of cohort (unknown migrations: \(unknown.joined(separator: ", "))); upgrade cohort to use this workspace"
    case .corrupt(let path, let reason):
      return "\(path) is not a usable cohort database (\(reason)); restore it from a backup or point --workspace elsewhere"
    case .notWritable(let path, let reason):
      return "cannot write the workspace at \(path) (\(reason)); check its permissions or choose another with --workspace"
    case .notFound(let kind, let name, let existing):
      let list = existing.isEmpty ? "there are none yet" : "known: \(existing.joined(separator: ", "))"
      let hint = nearest(name, in: existing).map { " — did you mean '\($0)'?" } ?? ""
      return "no \(kind) named '\(name)'\(hint) (\(list))"
    case .alreadyExists(let kind, let name):
      return "a \(kind) named '\(name)' already exists; choose another name or remove it first"
    case .invalidName(let kind, let name, let rule):
      return "invalid \(kind) name '\(name)': \(rule)"
    case .inUse(let kind, let name, let reason):
      return "cannot remove \(kind) '\(name)': \(reason)"
    case .database(let message):
      return "database error: \(message)"
    }
  }
}

extension StoreError {
  /// A database error from below the store (SQLite through GRDB) as one line, or nil for other errors: the SQLite
  /// message and what to do, never a type dump. Full disk and read-only media are named as such.
  public static func describe(_ error: any Error) -> String? {
    guard let error = error as? DatabaseError else { return nil }
    switch error.resultCode {
    case .SQLITE_FULL:
      return "the workspace database could not be written: the disk is full; free space and run the command again (nothing was changed)"
    case .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_PERM:
      return "the workspace database cannot be written (\(error.message ?? "\(error.resultCode)")); check the workspace's permissions"
    case .SQLITE_BUSY, .SQLITE_LOCKED:
      return "the workspace database is busy (another cohort process is writing); run the command again when it is done"
    case .SQLITE_CORRUPT, .SQLITE_NOTADB:
      return "the workspace database is damaged (\(error.message ?? "\(error.resultCode)")); restore it from a backup"
    default:
      return "database error: \(error.message ?? "\(error.resultCode)") (SQLite \(error.resultCode.rawValue))"
    }
  }
}
