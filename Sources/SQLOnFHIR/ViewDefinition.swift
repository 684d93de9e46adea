import FHIRPath
import Foundation

/// A ViewDefinition that is invalid or failed on a resource.
public enum ViewError: Error, CustomStringConvertible, Sendable, Equatable {
  /// The view itself is malformed: `location` is a JSON path into it (`select[0].forEach`).
  case invalid(location: String, message: String)
  /// A FHIRPath expression of the view does not parse or names an undefined constant.
  case expression(location: String, FHIRPathError)
  /// Running the view on one resource failed (e.g. a non-collection column got several values).
  case evaluation(location: String, resource: String?, message: String)

  public var description: String {
    switch self {
    case .invalid(let l, let m): return "invalid view at \(l): \(m)"
    case .expression(let l, let e): return "invalid view at \(l): \(e)"
    case .evaluation(let l, let r, let m):
      return "view failed at \(l)\(r.map { " on \($0)" } ?? ""): \(m)"
    }
  }
}

/// A column of a view's output, in output order.
public struct ViewColumn: Sendable, Equatable {
  public var name: String
  /// The FHIR type the view declares (`string`, `integer`, `dateTime`…), nil when undeclared.
  public var type: String?
  /// True when the column holds a JSON array of all the path's values.
  public var collection: Bool
  public var description: String?

  /// The SQL column type this maps to (SQLite affinities): INTEGER for boolean and the integer
  /// types, REAL for decimal, TEXT for strings, dates and times and for collections (as JSON),
  /// and "" (no affinity) when the view declares no type.
  public var sqlType: String { ViewColumn.sqlType(forFHIRType: type, collection: collection) }

  public static func sqlType(forFHIRType type: String?, collection: Bool = false) -> String {
    if collection { return "TEXT" }
    guard let type else { return "" }
    switch type {
    case "boolean", "integer", "positiveInt", "unsignedInt", "integer64": return "INTEGER"
    case "decimal": return "REAL"
    default: return "TEXT"
    }
  }
}

struct Column: Sendable {
  var info: ViewColumn
  var path: FHIRPathExpression
  var location: String
}

final class Select: Sendable {
  enum Iteration: Sendable {
    case none
    case forEach(FHIRPathExpression)
    case forEachOrNull(FHIRPathExpression)
    case repeatPaths([FHIRPathExpression])
  }
  let location: String
  let iteration: Iteration
  let columns: [Column]
  let selects: [Select]
  let unionAll: [Select]
  /// All output columns of this select (its own, nested selects', then the union's), in order.
  let outputColumns: [ViewColumn]

  init(
    location: String, iteration: Iteration, columns: [Column], selects: [Select], unionAll: [Select]
  ) {
    self.location = location
    self.iteration = iteration
    self.columns = columns
    self.selects = selects
    self.unionAll = unionAll
    outputColumns =
      columns.map(\.info) + selects.flatMap(\.outputColumns) + (unionAll.first?.outputColumns ?? [])
  }
}

/// A validated SQL-on-FHIR v2 ViewDefinition, its FHIRPath expressions parsed once.
///
/// Run it with `rows(for:)` per resource; it knows nothing of where resources come from.
public struct ViewDefinition: Sendable {
  /// The view's `name` (nil when absent).
  public let name: String?
  /// The FHIR resource type the view reads.
  public let resource: String
  /// The output columns in order.
  public let columns: [ViewColumn]
  /// The view's JSON as given.
  public let json: JSON

  let select: Select
  let whereClauses: [(FHIRPathExpression, String)]
  let constants: [String: [Item]]
  /// Element names any expression may read (nil: any), used to skip the rest when parsing.
  let memberNames: [[UInt8]]?

  /// Parses and validates a view given as JSON text.
  public init(jsonText data: Data) throws(ViewError) {
    let json: JSON
    do {
      json = try JSON.parse(data)
    } catch {
      throw .invalid(location: "view", message: error.description)
    }
    try self.init(json: json)
  }

  /// Validates a view: structure, FHIRPath syntax, constants, column names and union shapes.
  public init(json: JSON) throws(ViewError) {
    self.json = json
    guard case .object(let view) = json else {
      throw .invalid(location: "view", message: "a ViewDefinition must be a JSON object")
    }
    if let n = view["name"] {
      guard case .string(let s) = n else { throw .invalid(location: "name", message: "must be a string") }
      name = s
    } else {
      name = nil
    }
    guard let r = view["resource"] else {
      throw .invalid(location: "resource", message: "missing: name the FHIR resource type the view reads")
    }
    guard case .string(let rt) = r, !rt.isEmpty else {
      throw .invalid(location: "resource", message: "must be a resource type name")
    }
    resource = rt

    // Constants.
    var constants: [String: [Item]] = [:]
    if let c = view["constant"] {
      guard case .array(let list) = c else { throw .invalid(location: "constant", message: "must be an array") }
      for (k, entry) in list.enumerated() {
        let loc = "constant[\(k)]"
        guard case .object(let o) = entry else { throw .invalid(location: loc, message: "must be an object") }
        guard case .string(let cname)? = o["name"], Self.isValidName(cname) else {
          throw .invalid(location: loc + ".name", message: "missing or not a valid name")
        }
        let valueKeys = o.keys.indices.filter { o.keys[$0].hasPrefix("value") && o.keys[$0].count > 5 }
        guard valueKeys.count == 1 else {
          throw .invalid(
            location: loc,
            message: "constant '\(cname)' needs exactly one value[x] (valueString, valueInteger, …)")
        }
        let key = o.keys[valueKeys[0]]
        let type = FHIRType.named(
          key.dropFirst(5).prefix(1).lowercased() + key.dropFirst(6))
        let v = o.values[valueKeys[0]]
        switch v {
        case .string, .integer, .decimal, .bool: break
        default:
          throw .invalid(location: loc + "." + key, message: "a constant must be a primitive value")
        }
        guard constants[cname] == nil else {
          throw .invalid(location: loc, message: "constant '\(cname)' is defined twice")
        }
        constants[cname] = [Item(v, type: type)]
      }
    }
    self.constants = constants
    let known = Set(constants.keys)

    // Selects.
    guard case .array(let selects)? = view["select"], !selects.isEmpty else {
      throw .invalid(location: "select", message: "missing: a view needs at least one select")
    }
    var children: [Select] = []
    for (k, s) in selects.enumerated() {
      children.append(try Self.parseSelect(s, location: "select[\(k)]", constants: known))
    }
    select = Select(location: "view", iteration: .none, columns: [], selects: children, unionAll: [])
    columns = select.outputColumns
    var seen: Set<String> = []
    for c in columns where !seen.insert(c.name).inserted {
      throw .invalid(location: "select", message: "column name '\(c.name)' is used twice")
    }

    // Where.
    var whereClauses: [(FHIRPathExpression, String)] = []
    if let w = view["where"] {
      guard case .array(let list) = w else { throw .invalid(location: "where", message: "must be an array") }
      for (k, entry) in list.enumerated() {
        let loc = "where[\(k)].path"
        guard case .string(let p)? = entry["path"] else { throw .invalid(location: loc, message: "must be a string") }
        whereClauses.append((try Self.compile(p, loc, known), loc))
      }
    }
    self.whereClauses = whereClauses

    // Which element names to keep when parsing resources.
    var names: Set<String>? = ["resourceType", "id"]
    var all: [FHIRPathExpression] = whereClauses.map(\.0)
    Self.expressions(select, into: &all)
    for e in all {
      guard let n = e.memberNames else {
        names = nil
        break
      }
      names?.formUnion(n)
    }
    memberNames = names.map { $0.sorted().map { Array($0.utf8) } }
  }

  static func isValidName(_ s: String) -> Bool {
    guard let f = s.unicodeScalars.first, f.properties.isAlphabetic, f.isASCII else { return false }
    return s.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_") }
  }

  static func compile(_ text: String, _ location: String, _ constants: Set<String>) throws(ViewError)
    -> FHIRPathExpression
  {
    do {
      return try FHIRPathExpression(text, constants: constants)
    } catch {
      throw .expression(location: location, error)
    }
  }

  static func expressions(_ s: Select, into out: inout [FHIRPathExpression]) {
    switch s.iteration {
    case .none: break
    case .forEach(let e), .forEachOrNull(let e): out.append(e)
    case .repeatPaths(let es): out += es
    }
    out += s.columns.map(\.path)
    for c in s.selects { expressions(c, into: &out) }
    for c in s.unionAll { expressions(c, into: &out) }
  }

  static let selectKeys: Set<String> = ["column", "select", "unionAll", "forEach", "forEachOrNull", "repeat"]

  static func parseSelect(_ json: JSON, location: String, constants: Set<String>) throws(ViewError) -> Select {
    guard case .object(let o) = json else { throw .invalid(location: location, message: "must be an object") }
    for key in o.keys where !selectKeys.contains(key) && key != "extension" && key != "id" {
      throw .invalid(location: location + "." + key, message: "unknown element of a select")
    }
    var iteration = Select.Iteration.none
    let iterators = ["forEach", "forEachOrNull", "repeat"].filter { o[$0] != nil }
    guard iterators.count <= 1 else {
      throw .invalid(location: location, message: "use only one of forEach, forEachOrNull and repeat")
    }
    if let f = o["forEach"] {
      guard case .string(let p) = f else {
        throw .invalid(location: location + ".forEach", message: "must be a FHIRPath string")
      }
      iteration = .forEach(try compile(p, location + ".forEach", constants))
    } else if let f = o["forEachOrNull"] {
      guard case .string(let p) = f else {
        throw .invalid(location: location + ".forEachOrNull", message: "must be a FHIRPath string")
      }
      iteration = .forEachOrNull(try compile(p, location + ".forEachOrNull", constants))
    } else if let r = o["repeat"] {
      guard case .array(let paths) = r, !paths.isEmpty else {
        throw .invalid(location: location + ".repeat", message: "must be a non-empty array of FHIRPath strings")
      }
      var es: [FHIRPathExpression] = []
      for (k, p) in paths.enumerated() {
        guard case .string(let t) = p else {
          throw .invalid(location: location + ".repeat[\(k)]", message: "must be a FHIRPath string")
        }
        es.append(try compile(t, location + ".repeat[\(k)]", constants))
      }
      iteration = .repeatPaths(es)
    }

    var columns: [Column] = []
    if let c = o["column"] {
      guard case .array(let list) = c else { throw .invalid(location: location + ".column", message: "must be an array") }
      for (k, entry) in list.enumerated() {
        let loc = "\(location).column[\(k)]"
        guard case .object(let co) = entry else { throw .invalid(location: loc, message: "must be an object") }
        guard case .string(let name)? = co["name"] else {
          throw .invalid(location: loc + ".name", message: "missing or not a string")
        }
        guard isValidName(name) else {
          throw .invalid(
            location: loc + ".name",
            message: "'\(name)' is not a valid column name (letters, digits and _, starting with a letter)")
        }
        guard case .string(let path)? = co["path"] else {
          throw .invalid(location: loc + ".path", message: "missing or not a FHIRPath string")
        }
        var type: String?
        if let t = co["type"] {
          guard case .string(let s) = t else { throw .invalid(location: loc + ".type", message: "must be a string") }
          type = s
        }
        var collection = false
        if let cv = co["collection"] {
          guard case .bool(let b) = cv else {
            throw .invalid(location: loc + ".collection", message: "must be true or false")
          }
          collection = b
        }
        var description: String?
        if case .string(let d)? = co["description"] { description = d }
        let expr = try compile(path, loc + ".path", constants)
        columns.append(
          Column(
            info: ViewColumn(name: name, type: type, collection: collection, description: description),
            path: expr, location: loc + ".path"))
      }
    }

    var selects: [Select] = []
    if let s = o["select"] {
      guard case .array(let list) = s else { throw .invalid(location: location + ".select", message: "must be an array") }
      for (k, e) in list.enumerated() {
        selects.append(try parseSelect(e, location: "\(location).select[\(k)]", constants: constants))
      }
    }

    var unionAll: [Select] = []
    if let u = o["unionAll"] {
      guard case .array(let list) = u, !list.isEmpty else {
        throw .invalid(location: location + ".unionAll", message: "must be a non-empty array")
      }
      for (k, e) in list.enumerated() {
        unionAll.append(try parseSelect(e, location: "\(location).unionAll[\(k)]", constants: constants))
      }
      let first = unionAll[0].outputColumns.map(\.name)
      for (k, branch) in unionAll.enumerated().dropFirst() {
        let names = branch.outputColumns.map(\.name)
        if names != first {
          throw .invalid(
            location: "\(location).unionAll[\(k)]",
            message:
              "every unionAll branch must have the same columns in the same order: [\(first.joined(separator: ", "))] vs [\(names.joined(separator: ", "))]"
          )
        }
      }
    }
    if columns.isEmpty && selects.isEmpty && unionAll.isEmpty {
      throw .invalid(location: location, message: "a select needs a column, select or unionAll")
    }
    return Select(location: location, iteration: iteration, columns: columns, selects: selects, unionAll: unionAll)
  }
}
