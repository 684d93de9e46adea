/// FHIRPath abstract syntax and parser.

/// An error in a FHIRPath expression: where (0-based character offset) and why.
public enum FHIRPathError: Error, CustomStringConvertible, Sendable, Equatable {
  /// The expression does not parse.
  case syntax(expression: String, position: Int, message: String)
  /// A `%name` that is neither a view constant nor a built-in variable.
  case undefinedConstant(expression: String, position: Int, name: String)
  /// A function this evaluator does not know (or called with the wrong number of arguments).
  case unknownFunction(expression: String, position: Int, name: String, message: String)
  /// Evaluation failed on some resource (e.g. a singleton was expected but several items came).
  case evaluation(expression: String, message: String)

  public var description: String {
    switch self {
    case .syntax(let e, let p, let m):
      return "FHIRPath syntax error at position \(p + 1) in '\(e)': \(m)"
    case .undefinedConstant(let e, let p, let n):
      return
        "FHIRPath: undefined constant %\(n) at position \(p + 1) in '\(e)' — declare it in the view's constant list"
    case .unknownFunction(let e, let p, let n, let m):
      return "FHIRPath: \(m) '\(n)' at position \(p + 1) in '\(e)'"
    case .evaluation(let e, let m):
      return "FHIRPath evaluation of '\(e)' failed: \(m)"
    }
  }
}

indirect enum Node: Sendable {
  case literal([Item])
  case emptySet
  case this
  case index
  case total
  case variable(String, position: Int)  // %name (resolved at evaluation from the environment)
  case member(Node?, String)  // base.name, or name on the focus when base is nil
  case call(Node?, Function, [Node], position: Int)
  case typeCall(Node?, Function, TypeSpecifier)  // ofType(T), is(T), as(T), getReferenceKey(T)
  case indexer(Node, Node)
  case binary(BinaryOp, Node, Node)
  case negate(Node)
  case typeOp(isOp: Bool, Node, TypeSpecifier)
}

struct TypeSpecifier: Sendable, Equatable {
  var namespace: String?
  var name: String
}

enum BinaryOp: String, Sendable {
  case implies, or, xor, and
  case inOp = "in"
  case contains
  case eq = "=", ne = "!=", equiv = "~", notEquiv = "!~"
  case lt = "<", le = "<=", gt = ">", ge = ">="
  case union = "|"
  case add = "+", sub = "-", concat = "&"
  case mul = "*", div = "/", intDiv = "div", mod
}

enum Function: String, Sendable, CaseIterable {
  // Existence and filtering.
  case empty, exists, all, allTrue, anyTrue, allFalse, anyFalse, count, distinct, isDistinct
  case whereFn = "where", select, repeatFn = "repeat", ofType
  // Subsetting.
  case first, last, tail, skip, take, single, intersect, exclude
  // Combining, conversion, strings.
  case union, combine, iif, not, hasValue
  case toString, toInteger, toDecimal, toBoolean, convertsToInteger, convertsToDecimal
  case convertsToString, convertsToBoolean
  case join, startsWith, endsWith, contains, upper, lower, length, substring, indexOf, replace
  case matches, trim, split
  // Math.
  case abs, ceiling, floor, round, truncate
  // Tree and types.
  case children, descendants, `extension`, isFn = "is", asFn = "as", trace
  // Boundaries and keys.
  case lowBoundary, highBoundary, getResourceKey, getReferenceKey

  /// Functions whose arguments are evaluated per input item (`$this` is the item).
  var iteratesArguments: Bool {
    switch self {
    case .whereFn, .select, .all, .exists, .repeatFn: return true
    default: return false
    }
  }

  var arity: ClosedRange<Int> {
    switch self {
    case .empty, .allTrue, .anyTrue, .allFalse, .anyFalse, .count, .distinct, .isDistinct, .first,
      .last, .tail, .single, .not, .hasValue, .toString, .toInteger, .toDecimal, .toBoolean,
      .convertsToInteger, .convertsToDecimal, .convertsToString, .convertsToBoolean, .upper, .lower,
      .length, .abs, .ceiling, .floor, .truncate, .children, .descendants, .trim, .getResourceKey:
      return 0...0
    case .exists: return 0...1
    case .whereFn, .select, .repeatFn, .all, .ofType, .skip, .take, .intersect, .exclude, .union,
      .combine, .startsWith, .endsWith, .contains, .indexOf, .matches, .split, .extension, .isFn,
      .asFn:
      return 1...1
    case .iif: return 2...3
    case .join, .round, .lowBoundary, .highBoundary, .getReferenceKey: return 0...1
    case .substring, .trace: return 1...2
    case .replace: return 2...2
    }
  }
}

// MARK: - Lexer

enum Token: Equatable {
  case identifier(String)  // plain or `delimited`
  case string(String)
  case integer(Int)
  case decimal(Double, scale: Int)
  case dateTime(String)  // text after '@'
  case variable(String)  // %name
  case special(String)  // $this, $index, $total
  case symbol(String)
  case end
}

struct Lexer {
  let chars: [Character]
  let text: String
  var i = 0

  init(_ text: String) {
    self.text = text
    chars = Array(text)
  }

  func fail(_ message: String, at p: Int) -> FHIRPathError {
    .syntax(expression: text, position: p, message: message)
  }

  mutating func tokens() throws(FHIRPathError) -> [(Token, Int)] {
    var out: [(Token, Int)] = []
    while true {
      skipSpaceAndComments()
      let start = i
      guard i < chars.count else {
        out.append((.end, i))
        return out
      }
      let c = chars[i]
      if c.isLetter || c == "_" {
        var s = ""
        while i < chars.count, chars[i].isLetter || chars[i].isNumber || chars[i] == "_" {
          s.append(chars[i])
          i += 1
        }
        out.append((.identifier(s), start))
      } else if c == "`" {
        i += 1
        var s = ""
        while i < chars.count, chars[i] != "`" {
          s.append(chars[i])
          i += 1
        }
        guard i < chars.count else { throw fail("unterminated `identifier`", at: start) }
        i += 1
        out.append((.identifier(s), start))
      } else if c == "'" {
        out.append((.string(try quoted("'")), start))
      } else if c.isASCII && c.isNumber {
        var s = ""
        while i < chars.count, chars[i].isASCII, chars[i].isNumber {
          s.append(chars[i])
          i += 1
        }
        if i + 1 < chars.count, chars[i] == ".", chars[i + 1].isASCII, chars[i + 1].isNumber {
          i += 1
          var frac = ""
          while i < chars.count, chars[i].isASCII, chars[i].isNumber {
            frac.append(chars[i])
            i += 1
          }
          guard let d = Double(s + "." + frac) else { throw fail("invalid number", at: start) }
          out.append((.decimal(d, scale: frac.count), start))
        } else {
          guard let n = Int(s) else { throw fail("integer too large", at: start) }
          out.append((.integer(n), start))
        }
      } else if c == "@" {
        i += 1
        var s = ""
        while i < chars.count,
          chars[i].isNumber || "-:T+Z".contains(chars[i])
            || (chars[i] == "." && i + 1 < chars.count && chars[i + 1].isNumber)
        {
          s.append(chars[i])
          i += 1
        }
        guard !s.isEmpty else { throw fail("expected a date or time after '@'", at: start) }
        out.append((.dateTime(s), start))
      } else if c == "%" {
        i += 1
        if i < chars.count, chars[i] == "'" || chars[i] == "`" {
          out.append((.variable(try quoted(chars[i])), start))
        } else {
          var s = ""
          while i < chars.count, chars[i].isLetter || chars[i].isNumber || chars[i] == "_" {
            s.append(chars[i])
            i += 1
          }
          guard !s.isEmpty else { throw fail("expected a name after '%'", at: start) }
          out.append((.variable(s), start))
        }
      } else if c == "$" {
        i += 1
        var s = ""
        while i < chars.count, chars[i].isLetter {
          s.append(chars[i])
          i += 1
        }
        guard ["this", "index", "total"].contains(s) else {
          throw fail("unknown special variable '$\(s)'", at: start)
        }
        out.append((.special(s), start))
      } else {
        let two = i + 1 < chars.count ? String([c, chars[i + 1]]) : ""
        if ["<=", ">=", "!=", "!~"].contains(two) {
          i += 2
          out.append((.symbol(two), start))
        } else if ".[](),=~<>+-*/|&{}".contains(c) {
          i += 1
          out.append((.symbol(String(c)), start))
        } else {
          throw fail("unexpected character '\(c)'", at: start)
        }
      }
    }
  }

  mutating func skipSpaceAndComments() {
    while i < chars.count {
      if chars[i].isWhitespace {
        i += 1
      } else if chars[i] == "/", i + 1 < chars.count, chars[i + 1] == "/" {
        while i < chars.count, chars[i] != "\n" { i += 1 }
      } else if chars[i] == "/", i + 1 < chars.count, chars[i + 1] == "*" {
        i += 2
        while i + 1 < chars.count, !(chars[i] == "*" && chars[i + 1] == "/") { i += 1 }
        i = min(i + 2, chars.count)
      } else {
        return
      }
    }
  }

  mutating func quoted(_ q: Character) throws(FHIRPathError) -> String {
    let start = i
    i += 1
    var s = ""
    while i < chars.count {
      let c = chars[i]
      if c == q {
        i += 1
        return s
      }
      if c == "\\" {
        i += 1
        guard i < chars.count else { break }
        let e = chars[i]
        switch e {
        case "n": s.append("\n")
        case "r": s.append("\r")
        case "t": s.append("\t")
        case "f": s.append("\u{0C}")
        case "u":
          guard i + 4 < chars.count, let v = UInt32(String(chars[(i + 1)...(i + 4)]), radix: 16),
            let u = Unicode.Scalar(v)
          else { throw fail("invalid \\u escape", at: i - 1) }
          s.unicodeScalars.append(u)
          i += 4
        default: s.append(e)  // \' \" \` \\ \/
        }
        i += 1
        continue
      }
      s.append(c)
      i += 1
    }
    throw fail("unterminated string", at: start)
  }
}

// MARK: - Parser

struct Parser {
  let text: String
  var tokens: [(Token, Int)]
  var k = 0

  init(_ text: String) throws(FHIRPathError) {
    self.text = text
    var lexer = Lexer(text)
    tokens = try lexer.tokens()
  }

  var token: Token { tokens[k].0 }
  var position: Int { tokens[k].1 }

  func fail(_ message: String, at p: Int? = nil) -> FHIRPathError {
    .syntax(expression: text, position: p ?? position, message: message)
  }

  mutating func parse() throws(FHIRPathError) -> Node {
    guard token != .end else { throw fail("empty expression") }
    let node = try expression(0)
    guard token == .end else { throw fail("unexpected \(describe(token))") }
    return node
  }

  func describe(_ t: Token) -> String {
    switch t {
    case .identifier(let s): return "'\(s)'"
    case .string(let s): return "string '\(s)'"
    case .integer(let n): return "number \(n)"
    case .decimal(let d, _): return "number \(d)"
    case .dateTime(let s): return "'@\(s)'"
    case .variable(let s): return "'%\(s)'"
    case .special(let s): return "'$\(s)'"
    case .symbol(let s): return "'\(s)'"
    case .end: return "end of expression"
    }
  }

  /// Binary operator at the current token and its precedence (higher binds tighter).
  func binaryOperator() -> (BinaryOp, Int)? {
    switch token {
    case .identifier(let w):
      switch w {
      case "implies": return (.implies, 1)
      case "or": return (.or, 2)
      case "xor": return (.xor, 2)
      case "and": return (.and, 3)
      case "in": return (.inOp, 4)
      case "contains": return (.contains, 4)
      case "div": return (.intDiv, 9)
      case "mod": return (.mod, 9)
      default: return nil
      }
    case .symbol(let s):
      switch s {
      case "=": return (.eq, 5)
      case "!=": return (.ne, 5)
      case "~": return (.equiv, 5)
      case "!~": return (.notEquiv, 5)
      case "<": return (.lt, 6)
      case "<=": return (.le, 6)
      case ">": return (.gt, 6)
      case ">=": return (.ge, 6)
      case "|": return (.union, 7)
      case "+": return (.add, 8)
      case "-": return (.sub, 8)
      case "&": return (.concat, 8)
      case "*": return (.mul, 9)
      case "/": return (.div, 9)
      default: return nil
      }
    default: return nil
    }
  }

  mutating func expression(_ minPrecedence: Int) throws(FHIRPathError) -> Node {
    var left = try unary()
    while true {
      // `is` / `as` type operators (precedence between union and additive).
      if case .identifier(let w) = token, w == "is" || w == "as", 7 >= minPrecedence {
        k += 1
        let spec = try typeSpecifier()
        left = .typeOp(isOp: w == "is", left, spec)
        continue
      }
      guard let (op, prec) = binaryOperator(), prec >= minPrecedence else { return left }
      k += 1
      let right = try expression(prec + 1)
      left = .binary(op, left, right)
    }
  }

  mutating func unary() throws(FHIRPathError) -> Node {
    if case .symbol(let s) = token, s == "-" || s == "+" {
      k += 1
      let operand = try unary()
      return s == "-" ? .negate(operand) : operand
    }
    return try postfix()
  }

  mutating func typeSpecifier() throws(FHIRPathError) -> TypeSpecifier {
    guard case .identifier(let first) = token else { throw fail("expected a type name") }
    k += 1
    if token == .symbol("."), case .identifier(let second) = tokens[k + 1].0 {
      k += 2
      return TypeSpecifier(namespace: first, name: second)
    }
    return TypeSpecifier(namespace: nil, name: first)
  }

  mutating func postfix() throws(FHIRPathError) -> Node {
    var node = try term()
    while true {
      if token == .symbol(".") {
        k += 1
        node = try invocation(base: node)
      } else if token == .symbol("[") {
        k += 1
        let index = try expression(0)
        guard token == .symbol("]") else { throw fail("expected ']'") }
        k += 1
        node = .indexer(node, index)
      } else {
        return node
      }
    }
  }

  mutating func term() throws(FHIRPathError) -> Node {
    let p = position
    switch token {
    case .string(let s):
      k += 1
      return .literal([Item(.string(s), type: .string)])
    case .integer(let n):
      k += 1
      return try quantityTail(.integer(n), at: p)
    case .decimal(let d, let scale):
      k += 1
      return try quantityTail(.decimal(d, scale: scale), at: p)
    case .dateTime(let s):
      k += 1
      let type: FHIRType
      if s.hasPrefix("T") {
        type = .time
      } else if s.contains("T") {
        type = .dateTime
      } else {
        type = .date
      }
      return .literal([Item(.string(type == .time ? String(s.dropFirst()) : s), type: type)])
    case .variable(let name):
      k += 1
      return .variable(name, position: p)
    case .special(let s):
      k += 1
      switch s {
      case "this": return .this
      case "index": return .index
      default: return .total
      }
    case .symbol("("):
      k += 1
      let e = try expression(0)
      guard token == .symbol(")") else { throw fail("expected ')'") }
      k += 1
      return e
    case .symbol("{"):
      k += 1
      guard token == .symbol("}") else { throw fail("expected '}'") }
      k += 1
      return .emptySet
    case .identifier(let w) where w == "true" || w == "false":
      k += 1
      return .literal([Item(.bool(w == "true"), type: .boolean)])
    case .identifier:
      return try invocation(base: nil)
    default:
      throw fail("unexpected \(describe(token))", at: p)
    }
  }

  /// A number literal, possibly followed by a unit (`5 'mg'`, `4 days`): a Quantity.
  mutating func quantityTail(_ value: JSON, at p: Int) throws(FHIRPathError) -> Node {
    var unit: String?
    if case .string(let u) = token {
      unit = u
    } else if case .identifier(let u) = token,
      ["year", "years", "month", "months", "week", "weeks", "day", "days", "hour", "hours",
       "minute", "minutes", "second", "seconds", "millisecond", "milliseconds"].contains(u)
    {
      unit = u
    }
    guard let unit else {
      if case .integer = value { return .literal([Item(value, type: .integer)]) }
      return .literal([Item(value, type: .decimal)])
    }
    k += 1
    let q = JSON.object(JSONObject([("value", value), ("code", .string(unit))]))
    return .literal([Item(q, type: .named("Quantity"))])
  }

  mutating func invocation(base: Node?) throws(FHIRPathError) -> Node {
    let p = position
    let name: String
    switch token {
    case .identifier(let s): name = s
    case .special(let s):
      k += 1
      guard s == "this" else { throw fail("unexpected '$\(s)'", at: p) }
      return base ?? .this
    default: throw fail("expected a name after '.'", at: p)
    }
    k += 1
    guard token == .symbol("(") else { return .member(base, name) }
    k += 1
    guard let fn = Function(rawValue: name) ?? alias(name) else {
      throw FHIRPathError.unknownFunction(
        expression: text, position: p, name: name, message: "unknown function")
    }
    // Functions taking a type name.
    if fn == .ofType || fn == .isFn || fn == .asFn || fn == .getReferenceKey {
      if fn == .getReferenceKey, token == .symbol(")") {
        k += 1
        return .call(base, fn, [], position: p)
      }
      let spec: TypeSpecifier
      if case .string(let s) = token {  // getReferenceKey('Patient') is accepted too
        k += 1
        spec = TypeSpecifier(namespace: nil, name: s)
      } else {
        spec = try typeSpecifier()
      }
      guard token == .symbol(")") else { throw fail("expected ')' after the type name") }
      k += 1
      return .typeCall(base, fn, spec)
    }
    var args: [Node] = []
    if token != .symbol(")") {
      while true {
        args.append(try expression(0))
        if token == .symbol(",") {
          k += 1
          continue
        }
        break
      }
    }
    guard token == .symbol(")") else { throw fail("expected ')' or ','") }
    k += 1
    guard fn.arity.contains(args.count) else {
      throw FHIRPathError.unknownFunction(
        expression: text, position: p, name: name,
        message: "wrong number of arguments (\(args.count)) to")
    }
    return .call(base, fn, args, position: p)
  }

  func alias(_ name: String) -> Function? {
    switch name {
    case "where": return .whereFn
    case "repeat": return .repeatFn
    case "is": return .isFn
    case "as": return .asFn
    default: return nil
    }
  }
}
