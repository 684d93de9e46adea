// Kick-off parameters, validated locally before anything reaches the server (C17–C22, C62, C63).
import CohortBasics
import Foundation

public struct ExportParameters: Sendable, Codable, Equatable {
  /// `_type` (C19). Sent comma-joined with GET, one parameter per type with POST.
  public var types: [String]
  /// `_since`, a FHIR instant, verbatim (C18, C51).
  public var since: String?
  /// `_until` (STU3, C62), a FHIR instant.
  public var until: String?
  /// `_typeFilter`, one query per entry such as `MedicationRequest?status=active` (C20, C63).
  public var typeFilters: [String]
  /// `_elements` (C21): `element` or `Type.element`.
  public var elements: [String]
  /// `_outputFormat` (C17); omitted by default.
  public var outputFormat: String?
  /// `includeAssociatedData` (C21).
  public var includeAssociatedData: [String]
  /// `patient` references `Patient/id`, POST only (C21).
  public var patients: [String]

  public init(
    types: [String] = [], since: String? = nil, until: String? = nil, typeFilters: [String] = [],
    elements: [String] = [], outputFormat: String? = nil, includeAssociatedData: [String] = [],
    patients: [String] = []
  ) {
    self.types = types
    self.since = since
    self.until = until
    self.typeFilters = typeFilters
    self.elements = elements
    self.outputFormat = outputFormat
    self.includeAssociatedData = includeAssociatedData
    self.patients = patients
  }

  public static let outputFormats = ["application/fhir+ndjson", "application/ndjson", "ndjson"]
  public static let associatedDataCodes = ["LatestProvenanceResources", "RelevantProvenanceResources"]

  /// Throws `BulkError.invalidParameter` for the first problem found.
  public func validate(method: KickoffMethod) throws {
    for t in types where !FHIRResourceTypes.isKnown(t) {
      let hint = FHIRResourceTypes.nearest(t).map { " — did you mean \($0)?" } ?? ""
      throw BulkError.invalidParameter(
        name: "_type", value: t, reason: "not a FHIR R4 resource type\(hint)")
    }
    if Set(types).count != types.count {
      throw BulkError.invalidParameter(
        name: "_type", value: types.joined(separator: ","), reason: "a type is listed twice")
    }
    if let since, !FHIRInstant.isValid(since) {
      throw BulkError.invalidParameter(
        name: "_since", value: since,
        reason: "not a FHIR instant (needs date, time with seconds and a zone, e.g. 2024-01-15T00:00:00Z)")
    }
    if let until, !FHIRInstant.isValid(until) {
      throw BulkError.invalidParameter(
        name: "_until", value: until,
        reason: "not a FHIR instant (needs date, time with seconds and a zone, e.g. 2024-01-15T00:00:00Z)")
    }
    if let since, let until, let s = FHIRInstant.parse(since), let u = FHIRInstant.parse(until), s > u {
      throw BulkError.invalidParameter(name: "_until", value: until, reason: "is before _since \(since)")
    }
    for f in typeFilters { try Self.validateTypeFilter(f, types: types) }
    for e in elements {
      let parts = e.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
      let element: String
      if parts.count == 2 {
        guard FHIRResourceTypes.isKnown(parts[0]) else {
          throw BulkError.invalidParameter(
            name: "_elements", value: e, reason: "\(parts[0]) is not a FHIR R4 resource type")
        }
        element = parts[1]
      } else if parts.count == 1 {
        element = parts[0]
      } else {
        throw BulkError.invalidParameter(
          name: "_elements", value: e, reason: "use element or Type.element")
      }
      guard Self.isElementName(element) else {
        throw BulkError.invalidParameter(name: "_elements", value: e, reason: "not an element name")
      }
    }
    if let outputFormat, !Self.outputFormats.contains(outputFormat) {
      throw BulkError.invalidParameter(
        name: "_outputFormat", value: outputFormat,
        reason: "use one of \(Self.outputFormats.joined(separator: ", "))")
    }
    for code in includeAssociatedData
    where !(Self.associatedDataCodes.contains(code) || (code.hasPrefix("_") && code.count > 1)) {
      throw BulkError.invalidParameter(
        name: "includeAssociatedData", value: code,
        reason: "use LatestProvenanceResources, RelevantProvenanceResources or a _custom code")
    }
    if !patients.isEmpty && method != .post {
      throw BulkError.invalidParameter(
        name: "patient", value: patients.joined(separator: ","),
        reason: "is only allowed with a POST kick-off (set the server's kick-off method to post)")
    }
    for p in patients where !Self.isPatientReference(p) {
      throw BulkError.invalidParameter(
        name: "patient", value: p, reason: "must be a reference Patient/<id>")
    }
  }

  static func validateTypeFilter(_ f: String, types: [String]) throws {
    guard let q = f.firstIndex(of: "?") else {
      throw BulkError.invalidParameter(
        name: "_typeFilter", value: f, reason: "must look like Type?param=value")
    }
    let type = String(f[..<q])
    let query = String(f[f.index(after: q)...])
    guard FHIRResourceTypes.isKnown(type) else {
      throw BulkError.invalidParameter(
        name: "_typeFilter", value: f, reason: "\(type) is not a FHIR R4 resource type")
    }
    if !types.isEmpty && !types.contains(type) {
      throw BulkError.invalidParameter(
        name: "_typeFilter", value: f, reason: "\(type) is not in _type, so the filter would select nothing")
    }
    guard !query.isEmpty else {
      throw BulkError.invalidParameter(name: "_typeFilter", value: f, reason: "has an empty query")
    }
    for pair in query.split(separator: "&") {
      let name = pair.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
      let base = name.split(separator: ":").first.map(String.init) ?? name
      if ["_include", "_revinclude", "_sort"].contains(base) {
        throw BulkError.invalidParameter(
          name: "_typeFilter", value: f, reason: "SHALL NOT use \(base)")
      }
      if name.isEmpty || !pair.contains("=") {
        throw BulkError.invalidParameter(
          name: "_typeFilter", value: f, reason: "each search parameter needs name=value")
      }
    }
  }

  /// The search parameter names used by one `_typeFilter` value, keyed by type (for C67 checks).
  static func typeFilterParameters(_ f: String) -> (type: String, params: [String])? {
    guard let q = f.firstIndex(of: "?") else { return nil }
    let type = String(f[..<q])
    let params = f[f.index(after: q)...].split(separator: "&").compactMap { pair -> String? in
      guard let name = pair.split(separator: "=", maxSplits: 1).first else { return nil }
      return name.split(separator: ":").first.map(String.init)
    }
    return (type, params)
  }

  static func isElementName(_ s: String) -> Bool {
    guard let first = s.unicodeScalars.first, first.properties.isAlphabetic, s.count <= 64 else {
      return false
    }
    return s.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "_" }
  }

  static func isPatientReference(_ s: String) -> Bool {
    guard s.hasPrefix("Patient/") else { return false }
    let id = s.dropFirst("Patient/".count)
    return !id.isEmpty && id.count <= 64
      && id.unicodeScalars.allSatisfy {
        $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == ".")
      }
  }

  /// Query items in sending order, values unencoded (GET; C13, C17–C21, C62, C63).
  func queryItems() -> [(String, String)] {
    var items: [(String, String)] = []
    if let outputFormat { items.append(("_outputFormat", outputFormat)) }
    if let since { items.append(("_since", since)) }
    if let until { items.append(("_until", until)) }
    if !types.isEmpty { items.append(("_type", types.joined(separator: ","))) }
    if !elements.isEmpty { items.append(("_elements", elements.joined(separator: ","))) }
    for f in typeFilters { items.append(("_typeFilter", f)) }
    if !includeAssociatedData.isEmpty {
      items.append(("includeAssociatedData", includeAssociatedData.joined(separator: ",")))
    }
    return items
  }

  /// The query string (without `?`). `_type` and `_elements` keep their commas; everything else
  /// is percent-encoded, so `+` in an offset becomes `%2B` (C18) and `?`/`=` in a filter `%3F`/`%3D` (C20).
  func queryString() -> String {
    queryItems().map { name, value in
      let keepComma: Set<UInt8> = (name == "_type" || name == "_elements") ? [0x2C] : []
      return name + "=" + URLText.encode(value, keeping: keepComma)
    }.joined(separator: "&")
  }

  /// The FHIR `Parameters` body for a POST kick-off (C13). Repeated parameters instead of commas.
  func parametersBody() -> Data {
    var params: [[String: Any]] = []
    if let outputFormat { params.append(["name": "_outputFormat", "valueString": outputFormat]) }
    if let since { params.append(["name": "_since", "valueInstant": since]) }
    if let until { params.append(["name": "_until", "valueInstant": until]) }
    for t in types { params.append(["name": "_type", "valueString": t]) }
    for e in elements { params.append(["name": "_elements", "valueString": e]) }
    for f in typeFilters { params.append(["name": "_typeFilter", "valueString": f]) }
    for c in includeAssociatedData { params.append(["name": "includeAssociatedData", "valueCode": c]) }
    for p in patients { params.append(["name": "patient", "valueReference": ["reference": p]]) }
    let body: [String: Any] = ["resourceType": "Parameters", "parameter": params]
    return (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
  }

  /// The parameters as a flat dictionary, for log records (patient references are left out).
  public var logRecord: [String: String] {
    var d: [String: String] = [:]
    for (k, v) in queryItems() { d[k] = d[k].map { $0 + "," + v } ?? v }
    return d
  }
}
