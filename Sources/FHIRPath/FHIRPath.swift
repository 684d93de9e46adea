import Foundation

/// Variables an expression is evaluated with.
public struct FHIRPathEnvironment: Sendable {
  /// External constants (`%name`), already typed.
  public var constants: [String: [Item]]
  /// `%rowIndex`: the 0-based index of the current item in the enclosing iteration.
  public var rowIndex: Int
  /// `%resource` / `%rootResource` / `%context`; also the resource `getResourceKey()` reads.
  public var resource: Item?

  public init(constants: [String: [Item]] = [:], rowIndex: Int = 0, resource: Item? = nil) {
    self.constants = constants
    self.rowIndex = rowIndex
    self.resource = resource
  }
}

/// A FHIRPath expression, parsed once and evaluated many times.
public struct FHIRPathExpression: Sendable, CustomStringConvertible {
  public let text: String
  let root: Node

  /// Built-in environment variables (besides the caller's constants).
  public static let builtInVariables: Set<String> = [
    "rowIndex", "resource", "rootResource", "context", "ucum", "sct", "loinc",
  ]

  /// Parses `text`. When `constants` is given, every `%name` must be one of them or a built-in
  /// variable (else `.undefinedConstant` with its position).
  public init(_ text: String, constants: Set<String>? = nil) throws(FHIRPathError) {
    self.text = text
    var parser = try Parser(text)
    root = try parser.parse()
    if let constants {
      try Self.checkVariables(root, known: constants.union(Self.builtInVariables), text: text)
    }
  }

  public var description: String { text }

  static func checkVariables(_ n: Node, known: Set<String>, text: String) throws(FHIRPathError) {
    switch n {
    case .variable(let name, let p):
      if !known.contains(name) {
        throw .undefinedConstant(expression: text, position: p, name: name)
      }
    case .literal, .emptySet, .this, .index, .total: break
    case .member(let b, _):
      if let b { try checkVariables(b, known: known, text: text) }
    case .call(let b, _, let args, _):
      if let b { try checkVariables(b, known: known, text: text) }
      for a in args { try checkVariables(a, known: known, text: text) }
    case .typeCall(let b, _, _):
      if let b { try checkVariables(b, known: known, text: text) }
    case .indexer(let a, let b), .binary(_, let a, let b):
      try checkVariables(a, known: known, text: text)
      try checkVariables(b, known: known, text: text)
    case .negate(let a), .typeOp(_, let a, _):
      try checkVariables(a, known: known, text: text)
    }
  }

  /// Every element name the expression may read, or nil when it may read any (it uses `$this`,
  /// `%resource`, `children()`, …). Lets a caller skip the rest of a resource when parsing it.
  public var memberNames: Set<String>? {
    var names: Set<String> = []
    return Self.collect(root, into: &names) ? names : nil
  }

  static func collect(_ n: Node, into names: inout Set<String>) -> Bool {
    switch n {
    case .this: return false
    case .variable(let name, _):
      return !["resource", "rootResource", "context"].contains(name)
    case .literal, .emptySet, .index, .total: return true
    case .member(let b, let name):
      names.insert(name)
      return b.map { collect($0, into: &names) } ?? true
    case .call(let b, let fn, let args, _):
      switch fn {
      case .children, .descendants, .trace, .toString, .repeatFn: return false
      case .extension: names.insert("extension")
      case .getResourceKey:
        names.insert("id")
        names.insert("resourceType")
      default: break
      }
      if let b, !collect(b, into: &names) { return false }
      for a in args where !collect(a, into: &names) { return false }
      return true
    case .typeCall(let b, _, _):
      names.insert("resourceType")
      return b.map { collect($0, into: &names) } ?? true
    case .indexer(let a, let b), .binary(_, let a, let b):
      return collect(a, into: &names) && collect(b, into: &names)
    case .negate(let a), .typeOp(_, let a, _):
      return collect(a, into: &names)
    }
  }

  /// Evaluates the expression on `input` (usually one resource or one iteration item).
  public func evaluate(_ input: [Item], environment: FHIRPathEnvironment = FHIRPathEnvironment())
    throws(FHIRPathError) -> [Item]
  {
    var ev = Evaluator(text: text, env: environment)
    return try ev.eval(root, input)
  }

  /// Evaluates the expression on a resource (which is also `%resource`).
  public func evaluate(resource: JSON, environment: FHIRPathEnvironment = FHIRPathEnvironment())
    throws(FHIRPathError) -> [Item]
  {
    var env = environment
    let item = Item(resource)
    if env.resource == nil { env.resource = item }
    return try evaluate([item], environment: env)
  }
}

struct Evaluator {
  let text: String
  let env: FHIRPathEnvironment
  var index: Int?
  var total: [Item] = []

  init(text: String, env: FHIRPathEnvironment) {
    self.text = text
    self.env = env
  }

  func fail(_ message: String) -> FHIRPathError { .evaluation(expression: text, message: message) }

  mutating func eval(_ node: Node, _ input: [Item]) throws(FHIRPathError) -> [Item] {
    switch node {
    case .literal(let items): return items
    case .emptySet: return []
    case .this: return input
    case .index: return index.map { [Item(.integer($0), type: .integer)] } ?? []
    case .total: return total
    case .variable(let name, _): return try variable(name)
    case .member(let base, let name):
      let from = try base.map { (b) throws(FHIRPathError) in try eval(b, input) } ?? input
      var out: [Item] = []
      for item in from { Self.member(item, name, into: &out) }
      return out
    case .indexer(let base, let indexNode):
      let items = try eval(base, input)
      let idx = try eval(indexNode, input)
      guard idx.count == 1, case .integer(let n) = idx[0].json else {
        if idx.isEmpty { return [] }
        throw fail("an index must be a single integer")
      }
      return n >= 0 && n < items.count ? [items[n]] : []
    case .negate(let operand):
      let v = try eval(operand, input)
      guard v.count == 1 else {
        if v.isEmpty { return [] }
        throw fail("unary minus needs a single number")
      }
      switch v[0].json {
      case .integer(let i): return [Item(.integer(-i), type: .integer)]
      case .decimal(let d, let s): return [Item(.decimal(-d, scale: s), type: .decimal)]
      default: throw fail("unary minus needs a number")
      }
    case .typeOp(let isOp, let operand, let spec):
      let v = try eval(operand, input)
      let t = FHIRType.fromSpecifier(spec)
      if isOp {
        guard v.count == 1 else {
          if v.isEmpty { return [] }
          throw fail("'is' needs a single item")
        }
        return [Item(.bool(v[0].isOf(t)), type: .boolean)]
      }
      return v.filter { $0.isOf(t) }
    case .binary(let op, let l, let r):
      return try binary(op, l, r, input)
    case .typeCall(let base, let fn, let spec):
      let from = try base.map { (b) throws(FHIRPathError) in try eval(b, input) } ?? input
      let t = FHIRType.fromSpecifier(spec)
      switch fn {
      case .ofType, .asFn: return from.filter { $0.isOf(t) }
      case .isFn:
        guard from.count <= 1 else { throw fail("is() needs a single item") }
        return from.map { Item(.bool($0.isOf(t)), type: .boolean) }
      case .getReferenceKey:
        return from.compactMap { Self.referenceKey($0, type: spec.name).map { Item(.string($0), type: .string) } }
      default: throw fail("\(fn.rawValue) does not take a type")
      }
    case .call(let base, let fn, let args, _):
      let from = try base.map { (b) throws(FHIRPathError) in try eval(b, input) } ?? input
      return try call(fn, from, args, outer: input)
    }
  }

  func variable(_ name: String) throws(FHIRPathError) -> [Item] {
    switch name {
    case "rowIndex": return [Item(.integer(env.rowIndex), type: .integer)]
    case "resource", "rootResource", "context": return env.resource.map { [$0] } ?? []
    case "ucum": return [Item(.string("http://unitsofmeasure.org"), type: .string)]
    case "sct": return [Item(.string("http://snomed.info/sct"), type: .string)]
    case "loinc": return [Item(.string("http://loinc.org"), type: .string)]
    default:
      guard let v = env.constants[name] else { throw fail("undefined constant %\(name)") }
      return v
    }
  }

  /// Child `name` of `item`, FHIR-style: arrays flatten, nulls drop, choice elements resolve
  /// (`value` finds `valueQuantity`, typed `Quantity`), and a resource answers to its type name.
  static func member(_ item: Item, _ name: String, into out: inout [Item]) {
    guard case .object(let o) = item.json else { return }
    if let v = o[name] {
      append(v, type: nil, into: &out)
      return
    }
    // Choice type: name + upper-case type suffix.
    let n = name.utf8.count
    for k in o.keys.indices {
      let key = o.keys[k]
      guard key.utf8.count > n, key.hasPrefix(name) else { continue }
      let suffix = key.utf8.dropFirst(n)
      guard let c = suffix.first, c >= 0x41, c <= 0x5A else { continue }
      append(o.values[k], type: FHIRType.fromChoiceSuffix(Substring(suffix)), into: &out)
      return
    }
    if name.first?.isUppercase == true, case .string(let rt)? = o["resourceType"], rt == name {
      out.append(item)
    }
  }

  static func append(_ v: JSON, type: FHIRType?, into out: inout [Item]) {
    switch v {
    case .null: return
    case .array(let a):
      for e in a {
        if case .null = e { continue }
        out.append(Item(e, type: type))
      }
    default: out.append(Item(v, type: type))
    }
  }

  // MARK: Booleans

  /// Singleton evaluation of a collection as a Boolean: empty → nil, one Boolean → it, one other
  /// item → true, several → error.
  func boolean(_ items: [Item], _ what: String) throws(FHIRPathError) -> Bool? {
    if items.isEmpty { return nil }
    guard items.count == 1 else {
      throw fail("\(what) expects a single Boolean but got \(items.count) items")
    }
    if case .bool(let b) = items[0].json { return b }
    return true
  }

  static func result(_ b: Bool?) -> [Item] {
    b.map { [Item(.bool($0), type: .boolean)] } ?? []
  }

  // MARK: Operators

  mutating func binary(_ op: BinaryOp, _ l: Node, _ r: Node, _ input: [Item]) throws(FHIRPathError)
    -> [Item]
  {
    switch op {
    case .and:
      let a = try boolean(eval(l, input), "'and'")
      if a == false { return Self.result(false) }
      let b = try boolean(eval(r, input), "'and'")
      if b == false { return Self.result(false) }
      return Self.result(a == true && b == true ? true : nil)
    case .or:
      let a = try boolean(eval(l, input), "'or'")
      if a == true { return Self.result(true) }
      let b = try boolean(eval(r, input), "'or'")
      if b == true { return Self.result(true) }
      return Self.result(a == false && b == false ? false : nil)
    case .xor:
      guard let a = try boolean(eval(l, input), "'xor'"), let b = try boolean(eval(r, input), "'xor'")
      else { return [] }
      return Self.result(a != b)
    case .implies:
      let a = try boolean(eval(l, input), "'implies'")
      if a == false { return Self.result(true) }
      let b = try boolean(eval(r, input), "'implies'")
      if a == true { return Self.result(b) }
      return Self.result(b == true ? true : nil)
    default: break
    }
    let a = try eval(l, input)
    let b = try eval(r, input)
    switch op {
    case .union:
      var out = a
      for x in b where !out.contains(where: { Self.equal($0, x) == true }) { out.append(x) }
      var dedup: [Item] = []
      for x in out where !dedup.contains(where: { Self.equal($0, x) == true }) { dedup.append(x) }
      return dedup
    case .eq, .ne:
      guard !a.isEmpty, !b.isEmpty else { return [] }
      var eq: Bool? = a.count == b.count
      if eq == true {
        for k in a.indices {
          guard let e = Self.equal(a[k], b[k]) else {
            eq = nil
            break
          }
          if !e {
            eq = false
            break
          }
        }
      }
      guard let eq else { return [] }
      return Self.result(op == .eq ? eq : !eq)
    case .equiv, .notEquiv:
      var eq = a.count == b.count
      if eq {
        for x in a where !b.contains(where: { Self.equivalent($0, x) }) {
          eq = false
          break
        }
      }
      return Self.result(op == .equiv ? eq : !eq)
    case .lt, .le, .gt, .ge:
      guard !a.isEmpty, !b.isEmpty else { return [] }
      guard a.count == 1, b.count == 1 else {
        throw fail("'\(op.rawValue)' compares single items (got \(a.count) and \(b.count))")
      }
      guard let c = try compare(a[0], b[0]) else { return [] }
      switch op {
      case .lt: return Self.result(c < 0)
      case .le: return Self.result(c <= 0)
      case .gt: return Self.result(c > 0)
      default: return Self.result(c >= 0)
      }
    case .inOp:
      guard a.count <= 1 else { throw fail("'in' needs a single item on its left") }
      guard let x = a.first else { return [] }
      return Self.result(b.contains { Self.equal($0, x) == true })
    case .contains:
      guard b.count <= 1 else { throw fail("'contains' needs a single item on its right") }
      guard let x = b.first else { return [] }
      return Self.result(a.contains { Self.equal($0, x) == true })
    case .concat:
      guard a.count <= 1, b.count <= 1 else { throw fail("'&' needs single items") }
      return [Item(.string((a.first?.text ?? "") + (b.first?.text ?? "")), type: .string)]
    case .add, .sub, .mul, .div, .intDiv, .mod:
      guard !a.isEmpty, !b.isEmpty else { return [] }
      guard a.count == 1, b.count == 1 else {
        throw fail("'\(op.rawValue)' needs single items (got \(a.count) and \(b.count))")
      }
      return try arithmetic(op, a[0], b[0])
    default:
      throw fail("operator \(op.rawValue) not supported")
    }
  }

  static func number(_ j: JSON) -> (Double, Int, Bool)? {
    switch j {
    case .integer(let i): return (Double(i), 0, true)
    case .decimal(let d, let s): return (d, s, false)
    case .object(let o):  // a Quantity compares by its value
      if let v = o["value"], o["code"] != nil || o["unit"] != nil { return number(v) }
      return nil
    default: return nil
    }
  }

  static func equal(_ x: Item, _ y: Item) -> Bool? {
    switch (x.json, y.json) {
    case (.string(let a), .string(let b)):
      if isTemporal(x), isTemporal(y), a != b {
        // Different precisions are not comparable.
        if temporalPrecision(a) != temporalPrecision(b) { return nil }
      }
      return a == b
    case (.bool(let a), .bool(let b)): return a == b
    case (.integer(let a), .integer(let b)): return a == b
    default:
      if let a = number(x.json), let b = number(y.json) { return a.0 == b.0 }
      return x.json == y.json
    }
  }

  static func isTemporal(_ i: Item) -> Bool {
    guard let t = i.type?.name else { return false }
    return t == "date" || t == "dateTime" || t == "instant" || t == "time"
  }

  static func temporalPrecision(_ s: String) -> Int {
    s.utf8.filter { $0 >= 0x30 && $0 <= 0x39 }.count
  }

  static func equivalent(_ x: Item, _ y: Item) -> Bool {
    switch (x.json, y.json) {
    case (.string(let a), .string(let b)):
      let norm = { (s: String) in s.lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ") }
      return norm(a) == norm(b)
    default:
      if let a = number(x.json), let b = number(y.json) {
        let s = min(a.1, b.1)
        let f = pow(10.0, Double(s))
        return (a.0 * f).rounded() == (b.0 * f).rounded()
      }
      return equal(x, y) ?? false
    }
  }

  func compare(_ x: Item, _ y: Item) throws(FHIRPathError) -> Int? {
    if let a = Self.number(x.json), let b = Self.number(y.json) {
      return a.0 < b.0 ? -1 : (a.0 > b.0 ? 1 : 0)
    }
    if case .string(let a) = x.json, case .string(let b) = y.json {
      if Self.isTemporal(x) || Self.isTemporal(y) {
        // Compare the common precision; undecided when one stops where the other continues.
        let pa = Array(a.utf8)
        let pb = Array(b.utf8)
        let n = min(pa.count, pb.count)
        for k in 0..<n where pa[k] != pb[k] { return pa[k] < pb[k] ? -1 : 1 }
        return pa.count == pb.count ? 0 : nil
      }
      return a < b ? -1 : (a > b ? 1 : 0)
    }
    throw fail("cannot compare \(Self.kind(x)) with \(Self.kind(y))")
  }

  static func kind(_ i: Item) -> String {
    if let t = i.type { return t.name }
    switch i.json {
    case .string: return "string"
    case .integer: return "integer"
    case .decimal: return "decimal"
    case .bool: return "boolean"
    case .object: return "object"
    case .array: return "array"
    case .null: return "null"
    }
  }

  func arithmetic(_ op: BinaryOp, _ x: Item, _ y: Item) throws(FHIRPathError) -> [Item] {
    if op == .add, case .string(let a) = x.json, case .string(let b) = y.json {
      return [Item(.string(a + b), type: .string)]
    }
    guard case let (a, sa, ia)? = Self.number(x.json), case let (b, sb, ib)? = Self.number(y.json),
      Self.number(x.json) != nil
    else {
      throw fail("'\(op.rawValue)' needs numbers (got \(Self.kind(x)) and \(Self.kind(y)))")
    }
    if ia && ib, case .integer(let i) = x.json, case .integer(let j) = y.json {
      switch op {
      case .add:
        let (r, o) = i.addingReportingOverflow(j)
        return o ? [] : [Item(.integer(r), type: .integer)]
      case .sub:
        let (r, o) = i.subtractingReportingOverflow(j)
        return o ? [] : [Item(.integer(r), type: .integer)]
      case .mul:
        let (r, o) = i.multipliedReportingOverflow(by: j)
        return o ? [] : [Item(.integer(r), type: .integer)]
      case .intDiv: return j == 0 ? [] : [Item(.integer(i / j), type: .integer)]
      case .mod: return j == 0 ? [] : [Item(.integer(i % j), type: .integer)]
      default: break
      }
    }
    let r: Double
    var scale = max(sa, sb)
    switch op {
    case .add: r = a + b
    case .sub: r = a - b
    case .mul:
      r = a * b
      scale = sa + sb
    case .div:
      guard b != 0 else { return [] }
      r = a / b
      scale = max(scale, 1)
    case .intDiv:
      guard b != 0 else { return [] }
      return [Item(.integer(Int((a / b).rounded(.towardZero))), type: .integer)]
    case .mod:
      guard b != 0 else { return [] }
      r = a.truncatingRemainder(dividingBy: b)
    default: throw fail("unsupported operator \(op.rawValue)")
    }
    return [Item(.decimal(r, scale: scale), type: .decimal)]
  }

  // MARK: Functions

  mutating func single(_ items: [Item], _ fn: Function) throws(FHIRPathError) -> Item? {
    guard items.count <= 1 else {
      throw fail("\(fn.rawValue)() expects a single item but got \(items.count)")
    }
    return items.first
  }

  mutating func argument(_ args: [Node], _ k: Int, _ outer: [Item]) throws(FHIRPathError) -> [Item] {
    k < args.count ? try eval(args[k], outer) : []
  }

  mutating func stringArgument(_ args: [Node], _ k: Int, _ outer: [Item], _ fn: Function)
    throws(FHIRPathError) -> String?
  {
    let v = try argument(args, k, outer)
    guard v.count <= 1 else { throw fail("\(fn.rawValue)() expects a single string argument") }
    guard let first = v.first else { return nil }
    guard case .string(let s) = first.json else {
      throw fail("\(fn.rawValue)() expects a string argument")
    }
    return s
  }

  mutating func intArgument(_ args: [Node], _ k: Int, _ outer: [Item], _ fn: Function)
    throws(FHIRPathError) -> Int?
  {
    let v = try argument(args, k, outer)
    guard v.count <= 1 else { throw fail("\(fn.rawValue)() expects a single integer argument") }
    guard let first = v.first else { return nil }
    guard case .integer(let n) = first.json else {
      throw fail("\(fn.rawValue)() expects an integer argument")
    }
    return n
  }

  /// Evaluates a per-item argument with `$this` = the item and `$index` its position.
  mutating func perItem(_ arg: Node, _ item: Item, _ k: Int) throws(FHIRPathError) -> [Item] {
    let saved = index
    index = k
    defer { index = saved }
    return try eval(arg, [item])
  }

  mutating func call(_ fn: Function, _ input: [Item], _ args: [Node], outer: [Item])
    throws(FHIRPathError) -> [Item]
  {
    switch fn {
    case .empty: return Self.result(input.isEmpty)
    case .exists:
      if args.isEmpty { return Self.result(!input.isEmpty) }
      for (k, item) in input.enumerated() where try boolean(perItem(args[0], item, k), "exists()") == true {
        return Self.result(true)
      }
      return Self.result(false)
    case .all:
      for (k, item) in input.enumerated() where try boolean(perItem(args[0], item, k), "all()") != true {
        return Self.result(false)
      }
      return Self.result(true)
    case .allTrue, .anyTrue, .allFalse, .anyFalse:
      let bools = input.map { (i: Item) -> Bool? in if case .bool(let b) = i.json { return b } else { return nil } }
      switch fn {
      case .allTrue: return Self.result(bools.allSatisfy { $0 == true })
      case .anyTrue: return Self.result(bools.contains { $0 == true })
      case .allFalse: return Self.result(bools.allSatisfy { $0 == false })
      default: return Self.result(bools.contains { $0 == false })
      }
    case .count: return [Item(.integer(input.count), type: .integer)]
    case .distinct:
      var out: [Item] = []
      for x in input where !out.contains(where: { Self.equal($0, x) == true }) { out.append(x) }
      return out
    case .isDistinct:
      var out: [Item] = []
      for x in input where !out.contains(where: { Self.equal($0, x) == true }) { out.append(x) }
      return Self.result(out.count == input.count)
    case .whereFn:
      var out: [Item] = []
      for (k, item) in input.enumerated() where try boolean(perItem(args[0], item, k), "where()") == true {
        out.append(item)
      }
      return out
    case .select:
      var out: [Item] = []
      for (k, item) in input.enumerated() { out += try perItem(args[0], item, k) }
      return out
    case .repeatFn:
      var out: [Item] = []
      var queue = input
      var rounds = 0
      while !queue.isEmpty, rounds < 10_000 {
        rounds += 1
        var next: [Item] = []
        for (k, item) in queue.enumerated() {
          for r in try perItem(args[0], item, k) where !out.contains(where: { $0.json == r.json }) {
            out.append(r)
            next.append(r)
          }
        }
        queue = next
      }
      return out
    case .first: return input.first.map { [$0] } ?? []
    case .last: return input.last.map { [$0] } ?? []
    case .tail: return Array(input.dropFirst())
    case .skip:
      let n = try intArgument(args, 0, outer, fn) ?? 0
      return Array(input.dropFirst(max(0, n)))
    case .take:
      let n = try intArgument(args, 0, outer, fn) ?? 0
      return Array(input.prefix(max(0, n)))
    case .single:
      guard input.count <= 1 else { throw fail("single() got \(input.count) items") }
      return input
    case .intersect:
      let other = try argument(args, 0, outer)
      var out: [Item] = []
      for x in input where other.contains(where: { Self.equal($0, x) == true })
        && !out.contains(where: { Self.equal($0, x) == true })
      {
        out.append(x)
      }
      return out
    case .exclude:
      let other = try argument(args, 0, outer)
      return input.filter { x in !other.contains { Self.equal($0, x) == true } }
    case .union:
      let other = try argument(args, 0, outer)
      var out: [Item] = []
      for x in input + other where !out.contains(where: { Self.equal($0, x) == true }) { out.append(x) }
      return out
    case .combine: return input + (try argument(args, 0, outer))
    case .iif:
      // iif's criterion is evaluated on the input (one item), per the FHIRPath spec.
      let focus = input.count == 1 ? input : outer
      let c = try boolean(eval(args[0], focus), "iif()")
      if c == true { return try eval(args[1], focus) }
      return args.count > 2 ? try eval(args[2], focus) : []
    case .not:
      guard let b = try boolean(input, "not()") else { return [] }
      return Self.result(!b)
    case .hasValue:
      guard input.count == 1 else { return Self.result(false) }
      switch input[0].json {
      case .object, .array, .null: return Self.result(false)
      default: return Self.result(true)
      }
    case .toString:
      guard let i = try single(input, fn) else { return [] }
      return i.text.map { [Item(.string($0), type: .string)] } ?? []
    case .toInteger, .convertsToInteger:
      guard let i = try single(input, fn) else { return [] }
      var v: Int?
      switch i.json {
      case .integer(let n): v = n
      case .string(let s): v = Int(s)
      case .bool(let b): v = b ? 1 : 0
      default: v = nil
      }
      if fn == .convertsToInteger { return Self.result(v != nil) }
      return v.map { [Item(.integer($0), type: .integer)] } ?? []
    case .toDecimal, .convertsToDecimal:
      guard let i = try single(input, fn) else { return [] }
      var v: JSON?
      switch i.json {
      case .integer(let n): v = .decimal(Double(n), scale: 0)
      case .decimal: v = i.json
      case .string(let s): v = try? JSON.parse(s)
        if case .integer(let n)? = v { v = .decimal(Double(n), scale: 0) }
        if case .decimal? = v {} else { v = nil }
      case .bool(let b): v = .decimal(b ? 1 : 0, scale: 0)
      default: v = nil
      }
      if fn == .convertsToDecimal { return Self.result(v != nil) }
      return v.map { [Item($0, type: .decimal)] } ?? []
    case .toBoolean, .convertsToBoolean:
      guard let i = try single(input, fn) else { return [] }
      var v: Bool?
      switch i.json {
      case .bool(let b): v = b
      case .integer(let n): v = n == 1 ? true : (n == 0 ? false : nil)
      case .string(let s):
        switch s.lowercased() {
        case "true", "t", "yes", "y", "1", "1.0": v = true
        case "false", "f", "no", "n", "0", "0.0": v = false
        default: v = nil
        }
      default: v = nil
      }
      if fn == .convertsToBoolean { return Self.result(v != nil) }
      return Self.result(v)
    case .convertsToString:
      guard let i = try single(input, fn) else { return [] }
      return Self.result(i.text != nil)
    case .join:
      let sep = try stringArgument(args, 0, outer, fn) ?? ""
      return [Item(.string(input.compactMap(\.text).joined(separator: sep)), type: .string)]
    case .startsWith, .endsWith, .contains, .matches, .indexOf, .split:
      guard let i = try single(input, fn) else { return [] }
      guard case .string(let s) = i.json else { throw fail("\(fn.rawValue)() applies to strings") }
      guard let a = try stringArgument(args, 0, outer, fn) else { return [] }
      switch fn {
      case .startsWith: return Self.result(s.hasPrefix(a))
      case .endsWith: return Self.result(s.hasSuffix(a))
      case .contains: return Self.result(a.isEmpty || s.contains(a))
      case .matches:
        guard let re = try? NSRegularExpression(pattern: a, options: [.dotMatchesLineSeparators]) else {
          throw fail("invalid regular expression '\(a)'")
        }
        let r = NSRange(s.startIndex..., in: s)
        return Self.result(re.firstMatch(in: s, range: r) != nil)
      case .indexOf:
        guard let range = s.range(of: a) else { return [Item(.integer(-1), type: .integer)] }
        return [Item(.integer(s.distance(from: s.startIndex, to: range.lowerBound)), type: .integer)]
      default:
        return s.components(separatedBy: a).map { Item(.string($0), type: .string) }
      }
    case .replace:
      guard let i = try single(input, fn) else { return [] }
      guard case .string(let s) = i.json else { throw fail("replace() applies to strings") }
      guard let a = try stringArgument(args, 0, outer, fn), let b = try stringArgument(args, 1, outer, fn)
      else { return [] }
      return [Item(.string(s.replacingOccurrences(of: a, with: b)), type: .string)]
    case .upper, .lower, .length, .trim:
      guard let i = try single(input, fn) else { return [] }
      guard case .string(let s) = i.json else { throw fail("\(fn.rawValue)() applies to strings") }
      switch fn {
      case .upper: return [Item(.string(s.uppercased()), type: .string)]
      case .lower: return [Item(.string(s.lowercased()), type: .string)]
      case .trim: return [Item(.string(s.trimmingCharacters(in: .whitespacesAndNewlines)), type: .string)]
      default: return [Item(.integer(s.count), type: .integer)]
      }
    case .substring:
      guard let i = try single(input, fn) else { return [] }
      guard case .string(let s) = i.json else { throw fail("substring() applies to strings") }
      guard let start = try intArgument(args, 0, outer, fn) else { return [] }
      let chars = Array(s)
      guard start >= 0, start < chars.count else { return [] }
      let len = try intArgument(args, 1, outer, fn) ?? (chars.count - start)
      let end = min(chars.count, start + max(0, len))
      return [Item(.string(String(chars[start..<end])), type: .string)]
    case .abs, .ceiling, .floor, .truncate, .round:
      guard let i = try single(input, fn) else { return [] }
      switch (fn, i.json) {
      case (.abs, .integer(let n)): return [Item(.integer(Swift.abs(n)), type: .integer)]
      case (.abs, .decimal(let d, let s)): return [Item(.decimal(Swift.abs(d), scale: s), type: .decimal)]
      case (_, .integer(let n)) where fn != .round: return [Item(.integer(n), type: .integer)]
      default:
        guard let (d, _, _) = Self.number(i.json) else { throw fail("\(fn.rawValue)() applies to numbers") }
        switch fn {
        case .ceiling: return [Item(.integer(Int(d.rounded(.up))), type: .integer)]
        case .floor: return [Item(.integer(Int(d.rounded(.down))), type: .integer)]
        case .truncate: return [Item(.integer(Int(d.rounded(.towardZero))), type: .integer)]
        default:
          let p = try intArgument(args, 0, outer, fn) ?? 0
          let f = pow(10.0, Double(p))
          return [Item(.decimal((d * f).rounded() / f, scale: p), type: .decimal)]
        }
      }
    case .children, .descendants:
      var out: [Item] = []
      var queue = input
      while !queue.isEmpty {
        var next: [Item] = []
        for item in queue {
          guard case .object(let o) = item.json else { continue }
          for v in o.values { Self.append(v, type: nil, into: &next) }
        }
        out += next
        queue = fn == .descendants ? next : []
      }
      return out
    case .extension:
      guard let url = try stringArgument(args, 0, outer, fn) else { return [] }
      var out: [Item] = []
      for item in input {
        guard case .array(let exts)? = item.json["extension"] else { continue }
        for e in exts where e["url"] == .string(url) {
          out.append(Item(e, type: .named("Extension")))
        }
      }
      return out
    case .trace: return input
    case .lowBoundary, .highBoundary:
      var out: [Item] = []
      for item in input {
        if let b = Boundary.of(item, high: fn == .highBoundary) { out.append(b) }
      }
      return out
    case .getResourceKey:
      return input.compactMap { item in
        guard case .string(let id)? = item.json["id"], item.json["resourceType"] != nil else { return nil }
        return Item(.string(id), type: .string)
      }
    case .getReferenceKey:
      return input.compactMap { Self.referenceKey($0, type: nil).map { Item(.string($0), type: .string) } }
    case .ofType, .isFn, .asFn:
      throw fail("\(fn.rawValue)() needs a type name")
    }
  }

  /// The key of the resource a Reference points at (its id), when it names one of `type`.
  /// "Patient/1", "Patient/1/_history/2", "https://x/fhir/Patient/1" → "1"; "urn:uuid:X" → "X"
  /// (any type); a contained "#x" or a reference of another type → nil.
  static func referenceKey(_ item: Item, type: String?) -> String? {
    guard case .string(let ref)? = item.json["reference"] else { return nil }
    if ref.hasPrefix("#") { return nil }
    if ref.hasPrefix("urn:uuid:") || ref.hasPrefix("urn:oid:") {
      if let type, case .string(let t)? = item.json["type"], t != type { return nil }
      return String(ref.split(separator: ":").last ?? "")
    }
    var parts = ref.split(separator: "/", omittingEmptySubsequences: false)
    if parts.count >= 4, parts[parts.count - 2] == "_history" { parts.removeLast(2) }
    guard parts.count >= 2, !parts[parts.count - 1].isEmpty else { return nil }
    let t = parts[parts.count - 2]
    if let type, t != type { return nil }
    return String(parts[parts.count - 1])
  }
}
