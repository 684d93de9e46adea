import Foundation

extension Workspace {
  /// An absolute path for a user-given path (relative to the current directory, `~` expanded).
  public static func absolutePath(_ path: String) -> String {
    absolute(path, cwd: FileManager.default.currentDirectoryPath)
  }
}

/// Resource type lists given by users (`--types`, `--type`).
/// What a result column holds: decides the JSON type of its cells (`--format json`); text formats print cells as
/// they are. Counts are integers and names and ids text, whatever they look like (a cohort named `123` stays "123").
public enum ColumnKind: Sendable, Equatable {
  /// Names, ids, dates, free text: JSON strings ("" is null).
  case text
  /// Counts and sequence numbers: JSON integers ("" and non-numbers such as "—" are null).
  case integer
  /// Measured values: JSON numbers.
  case number
  /// true / false.
  case boolean
  /// Cells that are JSON text already (a view's collection column), written as they are.
  case json
}

public enum ResourceTypes {
  /// Splits `A,B` (and repeated values), trims, drops duplicates, checks each name's syntax.
  public static func parseList(_ text: String?) throws -> [String] {
    guard let text else { return [] }
    return try parseList([text])
  }

  public static func parseList(_ values: [String]) throws -> [String] {
    var seen = Set<String>()
    var out: [String] = []
    for value in values {
      for part in value.split(separator: ",") {
        let name = part.trimmingCharacters(in: .whitespaces)
        if name.isEmpty { continue }
        guard isPlausible(name) else {
          throw KitError.invalidArgument(
            "'\(name)' is not a FHIR resource type name (expected e.g. Patient, Observation)")
        }
        if seen.insert(name).inserted { out.append(name) }
      }
    }
    return out
  }

  /// `^[A-Z][A-Za-z]{0,63}$`
  public static func isPlausible(_ name: String) -> Bool {
    let bytes = Array(name.utf8)
    guard (1...64).contains(bytes.count), (0x41...0x5A).contains(bytes[0]) else { return false }
    return bytes.allSatisfy { (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }
  }
}
