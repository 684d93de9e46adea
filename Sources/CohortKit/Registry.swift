import CohortStore
import Foundation

/// Registry workflows: validation and the operations behind `server …` and `cohort …`.
public enum Registry {
  /// Checks a FHIR base URL: http(s), a host, no query or fragment. Returns it without a trailing '/'.
  public static func validateBaseURL(_ text: String) throws -> String {
    guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased() else {
      throw KitError.invalidURL(text, reason: "it is not a URL (expected e.g. https://fhir.example.org/r4)")
    }
    guard scheme == "http" || scheme == "https" else {
      throw KitError.invalidURL(text, reason: "the scheme must be http or https, not '\(scheme)'")
    }
    guard let host = url.host, !host.isEmpty else {
      throw KitError.invalidURL(text, reason: "it has no host")
    }
    guard url.query == nil, url.fragment == nil else {
      throw KitError.invalidURL(text, reason: "a FHIR base URL has no query or fragment")
    }
    guard url.user == nil, url.password == nil else {
      throw KitError.invalidURL(text, reason: "credentials in the URL are not allowed; use --auth")
    }
    var base = text
    while base.hasSuffix("/") { base.removeLast() }
    return base
  }

  /// An environment variable name.
  public static func validateEnvName(_ name: String) throws {
    let ok =
      !name.isEmpty && name.utf8.count <= 128
      && name.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }
      && !("0"..."9").contains(name.unicodeScalars.first!)
    guard ok else {
      throw KitError.invalidArgument("invalid environment variable name '\(name)': use letters, digits and '_'")
    }
  }

  /// Removes a cohort. With exports, `force` is required, and its folder is deleted after the rows.
  public static func removeCohort(_ name: String, force: Bool, workspace: Workspace, store: Store) throws {
    _ = try store.cohort(named: name)
    let count = try store.exportCount(cohort: name)
    let folder = workspace.cohortFolder(name)
    if count > 0 && !force {
      throw KitError.cohortHasExports(name: name, exports: count, folder: folder)
    }
    try store.removeCohort(named: name)
    if FileManager.default.fileExists(atPath: folder) {
      try? FileManager.default.removeItem(atPath: folder)
    }
  }

  /// Renames a cohort and its folder.
  public static func renameCohort(_ old: String, to new: String, workspace: Workspace, store: Store) throws {
    let oldFolder = workspace.cohortFolder(old)
    let newFolder = workspace.cohortFolder(new)
    if FileManager.default.fileExists(atPath: newFolder) {
      throw KitError.invalidArgument("cannot rename: the folder \(newFolder) already exists")
    }
    try store.renameCohort(old, to: new)
    if FileManager.default.fileExists(atPath: oldFolder) {
      do {
        try FileManager.default.moveItem(atPath: oldFolder, toPath: newFolder)
      } catch {
        try? store.renameCohort(new, to: old)
        throw KitError.failed("cannot move \(oldFolder) to \(newFolder); the rename was undone")
      }
    }
  }

  /// Validates `Type?query` filters for a cohort's definition.
  public static func validateTypeFilters(_ filters: [String]) throws {
    for filter in filters {
      let type = CohortDefinition.filterType(filter)
      guard filter.contains("?"), ResourceTypes.isPlausible(type), !filter.hasSuffix("?") else {
        throw KitError.invalidArgument("'\(filter)' is not a _typeFilter query (expected Type?param=value, e.g. Observation?code=4548-4)")
      }
    }
  }

  /// Changes a cohort's definition. Returns the resource types whose watermarks were reset (their next
  /// `--incremental` pulls them in full): a watermark belongs to the request shape it came from.
  public static func setDefinition(
    cohort name: String, types: [String]?, typeFilters: [String]?, elements: [String]?, store: Store
  ) throws -> (cohort: CohortRecord, reset: [String]) {
    var cohort = try store.cohort(named: name)
    let before = CohortDefinition(cohort)
    if let types { cohort.defaultTypes = types.isEmpty ? nil : types.joined(separator: ",") }
    if let typeFilters {
      try validateTypeFilters(typeFilters)
      cohort.typeFilters = typeFilters
    }
    if let elements { cohort.elements = elements }
    let after = CohortDefinition(cohort)
    var reset: [String] = []
    for mark in try store.watermarks(cohort: name) {
      let type = mark.resourceType
      let stillIn = type == CohortDefinition.allTypes ? after.types.isEmpty : after.contains(type)
      if !stillIn || after.shape(of: type) != before.shape(of: type) { reset.append(type) }
    }
    try store.updateCohort(cohort)
    if !reset.isEmpty { _ = try store.deleteWatermarks(cohort: name, types: reset) }
    return (cohort, reset.sorted())
  }
}
