import FHIRPath
import Foundation

extension ViewDefinition {
  /// One output row: values aligned with `columns` (JSON null for no value; a JSON array for a
  /// `collection` column).
  public typealias Row = [JSON]

  /// The rows a resource contributes (none when it is not of the view's type or fails a `where`).
  /// Implements the spec's processing algorithm: each select's foci (`forEach`,
  /// `forEachOrNull`, `repeat`), its columns, the cartesian product of nested selects, and
  /// `unionAll` branches concatenated.
  public func rows(for resource: JSON) throws(ViewError) -> [Row] {
    guard case .object(let o) = resource, case .string(let rt)? = o["resourceType"], rt == self.resource
    else { return [] }
    let item = Item(resource)
    let env = FHIRPathEnvironment(constants: constants, rowIndex: 0, resource: item)
    for (expr, location) in whereClauses {
      let r = try evaluate(expr, [item], env, location, resource)
      if r.isEmpty { return [] }
      guard r.count == 1, case .bool(let b) = r[0].json else {
        throw .evaluation(
          location: location, resource: Self.reference(resource),
          message: "a where path must return a single boolean, got \(r.count == 1 ? "a non-boolean value" : "\(r.count) values")")
      }
      if !b { return [] }
    }
    return try process(select, item, rowIndex: 0, env, resource)
  }

  /// Rows of one resource given as JSON text (one NDJSON line): members the view never reads are
  /// skipped while parsing. Lines of another resource type give no rows.
  public func rows(forJSON bytes: UnsafeBufferPointer<UInt8>) throws(ViewError) -> [Row] {
    let resource: JSON
    do {
      if let names = memberNames {
        resource = try JSON.parse(bytes) { key in Self.keep(key, names) }
      } else {
        resource = try JSON.parse(bytes)
      }
    } catch {
      throw .evaluation(location: "resource", resource: nil, message: error.description)
    }
    return try rows(for: resource)
  }

  /// Whether `key` is one of `names` or a choice element of one (`valueQuantity` for `value`).
  static func keep(_ key: UnsafeBufferPointer<UInt8>, _ names: [[UInt8]]) -> Bool {
    for n in names where key.count >= n.count {
      var match = true
      for k in 0..<n.count where key[k] != n[k] {
        match = false
        break
      }
      guard match else { continue }
      if key.count == n.count { return true }
      let c = key[n.count]
      if c >= 0x41 && c <= 0x5A { return true }
    }
    return false
  }

  /// Rows as objects keyed by column name (for JSON output and tests).
  public func objects(_ rows: [Row]) -> [JSON] {
    let names = columns.map(\.name)
    return rows.map { .object(JSONObject(keys: names, values: $0)) }
  }

  static func reference(_ resource: JSON) -> String? {
    guard case .string(let t)? = resource["resourceType"] else { return nil }
    return t
  }

  func evaluate(
    _ expr: FHIRPathExpression, _ input: [Item], _ env: FHIRPathEnvironment, _ location: String,
    _ resource: JSON
  ) throws(ViewError) -> [Item] {
    do {
      return try expr.evaluate(input, environment: env)
    } catch {
      throw .evaluation(location: location, resource: Self.reference(resource), message: error.description)
    }
  }

  func process(_ s: Select, _ node: Item, rowIndex: Int, _ baseEnv: FHIRPathEnvironment, _ resource: JSON)
    throws(ViewError) -> [Row]
  {
    var env = baseEnv
    env.rowIndex = rowIndex
    let foci: [Item]
    let iterates: Bool
    switch s.iteration {
    case .none:
      foci = [node]
      iterates = false
    case .forEach(let e):
      foci = try evaluate(e, [node], env, s.location + ".forEach", resource)
      iterates = true
    case .forEachOrNull(let e):
      foci = try evaluate(e, [node], env, s.location + ".forEachOrNull", resource)
      iterates = true
      if foci.isEmpty {
        // The null row: own columns evaluated on an empty focus (so %rowIndex is 0 and paths
        // give null), nested selects' columns null.
        env.rowIndex = 0
        var row: Row = []
        for c in s.columns {
          let values = try evaluate(c.path, [], env, c.location, resource)
          row.append(c.info.collection ? .array(values.map(\.json)) : (values.count == 1 ? values[0].json : .null))
        }
        row += Row(repeating: .null, count: s.outputColumns.count - s.columns.count)
        return [row]
      }
    case .repeatPaths(let es):
      var out: [Item] = []
      try collectRepeat(es, node, env, s.location, resource, into: &out, depth: 0)
      foci = out
      iterates = true
    }
    var result: [Row] = []
    for (k, focus) in foci.enumerated() {
      env.rowIndex = iterates ? k : rowIndex
      var own: Row = []
      own.reserveCapacity(s.columns.count)
      for c in s.columns {
        let values = try evaluate(c.path, [focus], env, c.location, resource)
        if c.info.collection {
          own.append(.array(values.map(\.json)))
        } else if values.count > 1 {
          throw .evaluation(
            location: c.location, resource: Self.reference(resource),
            message:
              "column '\(c.info.name)' got \(values.count) values; declare it with \"collection\": true or narrow the path (e.g. .first())"
          )
        } else {
          own.append(values.first?.json ?? .null)
        }
      }
      var partials: [Row] = [own]
      for child in s.selects {
        let childRows = try process(child, focus, rowIndex: env.rowIndex, env, resource)
        partials = Self.product(partials, childRows)
        if partials.isEmpty { break }
      }
      if !s.unionAll.isEmpty, !partials.isEmpty {
        var union: [Row] = []
        for branch in s.unionAll {
          union += try process(branch, focus, rowIndex: env.rowIndex, env, resource)
        }
        partials = Self.product(partials, union)
      }
      result += partials
    }
    return result
  }

  static func product(_ a: [Row], _ b: [Row]) -> [Row] {
    if a.count == 1 { return b.map { a[0] + $0 } }
    var out: [Row] = []
    out.reserveCapacity(a.count * b.count)
    for x in a {
      for y in b { out.append(x + y) }
    }
    return out
  }

  /// `repeat`: every node reachable by applying the paths again and again, depth first, each
  /// node followed by its descendants.
  func collectRepeat(
    _ es: [FHIRPathExpression], _ node: Item, _ env: FHIRPathEnvironment, _ location: String,
    _ resource: JSON, into out: inout [Item], depth: Int
  ) throws(ViewError) {
    guard depth < 100 else {
      throw .evaluation(location: location + ".repeat", resource: Self.reference(resource), message: "nesting deeper than 100 levels")
    }
    for (k, e) in es.enumerated() {
      for child in try evaluate(e, [node], env, "\(location).repeat[\(k)]", resource) {
        out.append(child)
        try collectRepeat(es, child, env, location, resource, into: &out, depth: depth + 1)
      }
    }
  }
}
