// What the server declares in its CapabilityStatement, and the refusal before kick-off.
import Foundation

public struct CapabilitySummary: Sendable, Equatable {
  public var softwareName: String?
  public var softwareVersion: String?
  public var softwareReleaseDate: String?
  public var fhirVersion: String?
  /// "group", "patient", "system" — the export operations the server declares.
  public var exportOperations: Set<String>
  /// Resource types in `rest.resource` (empty if the server lists none).
  public var resourceTypes: Set<String>
  /// Search parameters per type (`rest.resource.searchParam`), for `_typeFilter` checks (C67).
  public var searchParams: [String: Set<String>]

  public init(
    softwareName: String? = nil, softwareVersion: String? = nil, softwareReleaseDate: String? = nil,
    fhirVersion: String? = nil, exportOperations: Set<String> = [], resourceTypes: Set<String> = [],
    searchParams: [String: Set<String>] = [:]
  ) {
    self.softwareName = softwareName
    self.softwareVersion = softwareVersion
    self.softwareReleaseDate = softwareReleaseDate
    self.fhirVersion = fhirVersion
    self.exportOperations = exportOperations
    self.resourceTypes = resourceTypes
    self.searchParams = searchParams
  }

  private struct CS: Decodable {
    struct Software: Decodable { var name: String?; var version: String?; var releaseDate: String? }
    struct Op: Decodable { var name: String?; var definition: String? }
    struct SP: Decodable { var name: String? }
    struct Resource: Decodable {
      var type: String?
      var operation: [Op]?
      var searchParam: [SP]?
    }
    struct Rest: Decodable {
      var mode: String?
      var resource: [Resource]?
      var operation: [Op]?
    }
    var resourceType: String?
    var software: Software?
    var fhirVersion: String?
    var instantiates: [String]?
    var rest: [Rest]?
  }

  /// Parses a CapabilityStatement.
  public static func parse(_ data: Data) throws -> CapabilitySummary {
    guard let cs = try? JSONDecoder().decode(CS.self, from: data), cs.resourceType == "CapabilityStatement"
    else {
      throw BulkError.protocolViolation(operation: .capabilities, detail: "GET metadata did not return a CapabilityStatement")
    }
    var s = CapabilitySummary(
      softwareName: cs.software?.name, softwareVersion: cs.software?.version,
      softwareReleaseDate: cs.software?.releaseDate, fhirVersion: cs.fhirVersion)
    func level(_ op: CS.Op, resource: String?) -> String? {
      let def = op.definition ?? ""
      let name = (op.name ?? "").lowercased().replacingOccurrences(of: "$", with: "")
      if def.hasSuffix("/group-export") || name == "group-export" { return "group" }
      if def.hasSuffix("/patient-export") || name == "patient-export" { return "patient" }
      if name == "export" || def.hasSuffix("/export") || def.hasSuffix("/bulk-data-export") {
        switch resource {
        case "Group": return "group"
        case "Patient": return "patient"
        case nil: return "system"
        default: return nil
        }
      }
      return nil
    }
    for rest in cs.rest ?? [] where rest.mode == nil || rest.mode == "server" {
      for op in rest.operation ?? [] { if let l = level(op, resource: nil) { s.exportOperations.insert(l) } }
      for r in rest.resource ?? [] {
        guard let type = r.type else { continue }
        s.resourceTypes.insert(type)
        for op in r.operation ?? [] { if let l = level(op, resource: type) { s.exportOperations.insert(l) } }
        let names = Set((r.searchParam ?? []).compactMap(\.name))
        if !names.isEmpty { s.searchParams[type] = names }
      }
    }
    // A server that instantiates the Bulk Data CapabilityStatement declares all three.
    if (cs.instantiates ?? []).contains(where: { $0.contains("/bulkdata/CapabilityStatement/bulk-data") }) {
      s.exportOperations.formUnion(["group", "patient", "system"])
    }
    return s
  }

  /// Refuses an export the server does not declare: the operation, a requested type, or a
  /// `_typeFilter` search parameter missing from the type's declared searchParams.
  public func check(level: ExportLevel, parameters: ExportParameters, server: String = "the server") throws {
    guard exportOperations.contains(level.name) else {
      throw BulkError.notSupported(what: "\(level.name)-level $export", server: server)
    }
    if !resourceTypes.isEmpty {
      for t in parameters.types where !resourceTypes.contains(t) {
        throw BulkError.notSupported(what: "resource type \(t)", server: server)
      }
    }
    for f in parameters.typeFilters {
      guard let (type, params) = ExportParameters.typeFilterParameters(f),
        let declared = searchParams[type]
      else { continue }
      let common: Set<String> = ["_id", "_lastUpdated", "_tag", "_profile", "_security", "_source", "_has", "_list", "_count"]
      for p in params where !declared.contains(p) && !common.contains(p) {
        throw BulkError.notSupported(what: "the search parameter \(type).\(p) used in _typeFilter", server: server)
      }
    }
  }
}
