// _typeFilter evaluation (code, status, date and a few more search parameters) and _elements.

struct TypeFilter: Sendable {
  var type: String
  /// Every (parameter, value) must match (AND); a value with commas is an OR.
  var criteria: [(String, String)]
}

enum Filters {
  static let supportedParameters = [
    "code", "status", "clinical-status", "category", "date", "_lastUpdated", "_id", "gender", "patient", "subject",
    "vaccine-code",
  ]

  /// Splits one `_typeFilter` value into its queries, as the IG defines it: a comma-separated list of
  /// `Type?query` entries (`Observation?category=laboratory,Observation?category=vital-signs`). A comma
  /// starts a new entry only when what follows looks like `Type?`; other commas stay inside the entry,
  /// where they OR the values of one parameter (`Observation?code=a,b`).
  static func parseList(_ text: String, knownTypes: [String]) throws(RequestError) -> [TypeFilter] {
    var entries: [String] = []
    var current = ""
    var rest = Substring(text)
    while let comma = rest.firstIndex(of: ",") {
      current += rest[..<comma]
      let after = rest[rest.index(after: comma)...]
      if startsEntry(after) {
        entries.append(current)
        current = ""
      } else {
        current += ","
      }
      rest = after
    }
    current += rest
    entries.append(current)
    var out: [TypeFilter] = []
    for entry in entries.map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
      out.append(try parse(entry, knownTypes: knownTypes))
    }
    guard !out.isEmpty else { throw .badRequest("_typeFilter is empty; it must look like Type?param=value") }
    return out
  }

  /// `Type?…`: a resource type name (a capital letter, then letters or digits) followed by `?`.
  static func startsEntry(_ s: Substring) -> Bool {
    let t = s.drop { $0 == " " }
    guard let first = t.first, first.isASCII, first.isUppercase, let q = t.firstIndex(of: "?") else { return false }
    return t[..<q].allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
  }

  /// Parses one `_typeFilter` value: `Type?param=value&param=value` (already percent-decoded once).
  static func parse(_ text: String, knownTypes: [String]) throws(RequestError) -> TypeFilter {
    guard let q = text.firstIndex(of: "?") else {
      throw .badRequest("_typeFilter '\(text)' must look like Type?param=value")
    }
    let type = String(text[..<q])
    guard knownTypes.contains(type) else {
      throw .badRequest("_typeFilter '\(text)' names an unsupported resource type '\(type)'")
    }
    var criteria: [(String, String)] = []
    for part in text[text.index(after: q)...].split(separator: "&") {
      let kv = part.split(separator: "=", maxSplits: 1)
      guard kv.count == 2, !kv[1].isEmpty else {
        throw .badRequest("_typeFilter '\(text)': '\(part)' is not a param=value pair")
      }
      let name = URLTools.percentDecode(String(kv[0]))
      let value = URLTools.percentDecode(String(kv[1]))
      if name == "_include" || name == "_revinclude" || name == "_sort" {
        throw .badRequest("_typeFilter '\(text)': \(name) is not allowed in a _typeFilter")
      }
      criteria.append((name, value))
    }
    guard !criteria.isEmpty else { throw .badRequest("_typeFilter '\(text)' has no search parameters") }
    return TypeFilter(type: type, criteria: criteria)
  }

  /// Names of parameters in `filter` that this server cannot evaluate.
  static func unsupported(_ filter: TypeFilter) -> [String] {
    filter.criteria.map(\.0).filter { name in
      let base = name.split(separator: ":").first.map(String.init) ?? name
      return !supportedParameters.contains(base)
    }
  }

  static func matches(_ resource: StoredResource, _ filter: TypeFilter) -> Bool {
    let r = ParsedResource(id: resource.id, type: resource.type, lastUpdated: resource.lastUpdated, json: resource.json)
    for (name, value) in filter.criteria {
      let base = name.split(separator: ":").first.map(String.init) ?? name
      let alternatives = value.split(separator: ",").map(String.init)
      let ok: Bool
      switch base {
      case "code", "vaccine-code":
        ok = codeMatches(r.json["code"] ?? r.json["vaccineCode"] ?? r.json["medicationCodeableConcept"], alternatives)
      case "category":
        ok = (r.json["category"]?.arrayValue ?? []).contains { codeMatches($0, alternatives) }
          || alternatives.contains { a in r.json["category"]?.arrayValue?.contains { $0.stringValue == a } ?? false }
      case "status":
        if let s = r.json["status"]?.stringValue {
          ok = alternatives.contains(s)
        } else {
          ok = codeMatches(r.json["clinicalStatus"], alternatives)
        }
      case "clinical-status":
        ok = codeMatches(r.json["clinicalStatus"], alternatives)
      case "gender":
        ok = alternatives.contains(r.json["gender"]?.stringValue ?? "")
      case "_id":
        ok = alternatives.contains(r.id)
      case "patient", "subject":
        let ref = (r.json["subject"] ?? r.json["patient"])?["reference"]?.stringValue ?? (r.type == "Patient" ? "Patient/\(r.id)" : "")
        ok = alternatives.contains { $0 == ref || "Patient/" + $0 == ref }
      case "date":
        ok = alternatives.contains { dateMatches(clinicalDate(r), $0) }
      case "_lastUpdated":
        ok = alternatives.contains { dateMatches(r.lastUpdated, $0) }
      default:
        ok = true  // unsupported parameters are rejected (strict) or ignored (lenient) before this point
      }
      if !ok { return false }
    }
    return true
  }

  /// `system|code`, `code` or `system|` against a CodeableConcept.
  static func codeMatches(_ concept: JSON?, _ alternatives: [String]) -> Bool {
    guard let codings = concept?["coding"]?.arrayValue else { return false }
    for alt in alternatives {
      let system: String?
      let code: String
      if let bar = alt.firstIndex(of: "|") {
        system = String(alt[..<bar])
        code = String(alt[alt.index(after: bar)...])
      } else {
        system = nil
        code = alt
      }
      for c in codings {
        let cs = c["system"]?.stringValue
        let cc = c["code"]?.stringValue
        if let system, !system.isEmpty, cs != system { continue }
        if code.isEmpty || cc == code { return true }
      }
    }
    return false
  }

  struct ParsedResource {
    var id: String
    var type: String
    var lastUpdated: Int
    var json: JSON
  }

  static func clinicalDate(_ r: ParsedResource) -> Int? {
    let candidates = [
      r.json["effectiveDateTime"], r.json["period"]?["start"], r.json["onsetDateTime"], r.json["recordedDate"],
      r.json["authoredOn"], r.json["performedDateTime"], r.json["occurrenceDateTime"], r.json["birthDate"],
      r.json["effectivePeriod"]?["start"], r.json["performedPeriod"]?["start"], r.json["issued"],
    ]
    for c in candidates {
      if let s = c?.stringValue, let t = Instant.parse(s, allowPartial: true) { return t }
    }
    return nil
  }

  /// FHIR date search with prefixes eq, ne, gt, lt, ge, le, sa, eb; the value's precision sets the range.
  static func dateMatches(_ t: Int?, _ value: String) -> Bool {
    guard let t else { return false }
    var v = Substring(value)
    var prefix = "eq"
    if v.count > 2, let p = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"].first(where: { v.hasPrefix($0) }) {
      prefix = p
      v = v.dropFirst(2)
    }
    guard let start = Instant.parse(String(v), allowPartial: true) else { return false }
    let end: Int  // exclusive end of the value's range
    switch v.count {
    case 4: end = Instant.days(year: Int(v.prefix(4))! + 1, month: 1, day: 1) * 86400
    case 7:
      let y = Int(v.prefix(4))!, m = Int(v.dropFirst(5).prefix(2))!
      end = Instant.days(year: m == 12 ? y + 1 : y, month: m == 12 ? 1 : m + 1, day: 1) * 86400
    case 10: end = start + 86400
    default: end = start + 1
    }
    switch prefix {
    case "eq": return t >= start && t < end
    case "ne": return t < start || t >= end
    case "gt", "sa": return t >= end
    case "lt", "eb": return t < start
    case "ge": return t >= start
    case "le": return t < end
    default: return false
    }
  }

  /// Keeps resourceType, id, meta and the named elements, and tags the result SUBSETTED.
  static func subset(_ r: StoredResource, elements: Set<String>) -> StoredResource {
    guard case .object(let members) = r.json else { return r }
    var kept: [(String, JSON)] = []
    for (k, v) in members {
      if k == "resourceType" || k == "id" || elements.contains(k) {
        kept.append((k, v))
      } else if k == "meta" {
        let tag = JSON.object([
          ("system", .string("http://terminology.hl7.org/CodeSystem/v3-ObservationValue")), ("code", .string("SUBSETTED")),
          ("display", .string("subsetted")),
        ])
        let tags = (v["tag"]?.arrayValue ?? []) + [tag]
        kept.append((k, v.setting("tag", .array(tags))))
      }
    }
    var copy = r
    copy.json = .object(kept)
    return copy
  }
}
