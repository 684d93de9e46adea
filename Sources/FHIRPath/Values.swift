/// FHIRPath values: JSON nodes with the FHIR type when it is known.

/// A FHIR or FHIRPath type name, normalised: primitives start lower-case (`string`, `dateTime`),
/// complex types and resources upper-case (`Quantity`, `Patient`).
public struct FHIRType: Sendable, Hashable, CustomStringConvertible {
  public let name: String

  public init(_ name: String) { self.name = name }

  public static let boolean = FHIRType("boolean")
  public static let string = FHIRType("string")
  public static let integer = FHIRType("integer")
  public static let decimal = FHIRType("decimal")
  public static let date = FHIRType("date")
  public static let dateTime = FHIRType("dateTime")
  public static let time = FHIRType("time")
  public static func named(_ n: String) -> FHIRType { FHIRType(n) }

  public var description: String { name }

  /// FHIR R4 primitive type names.
  static let primitives: Set<String> = [
    "boolean", "integer", "integer64", "string", "decimal", "uri", "url", "canonical", "base64Binary",
    "instant", "date", "dateTime", "time", "code", "oid", "id", "markdown", "unsignedInt",
    "positiveInt", "uuid", "xhtml",
  ]

  /// The type named by a choice-element suffix (`valueDateTime` → `dateTime`, `valueQuantity` →
  /// `Quantity`).
  static func fromChoiceSuffix<S: StringProtocol>(_ suffix: S) -> FHIRType {
    let lowered = suffix.prefix(1).lowercased() + suffix.dropFirst()
    return primitives.contains(lowered) ? FHIRType(lowered) : FHIRType(String(suffix))
  }

  /// A type name as written in `ofType(…)`/`is`/`as`: `FHIR.Quantity`, `System.String`, `string`.
  static func fromSpecifier(_ spec: TypeSpecifier) -> FHIRType {
    let n = spec.name
    let lowered = n.prefix(1).lowercased() + n.dropFirst()
    if spec.namespace == "System" || primitives.contains(lowered) {
      switch lowered {
      case "string", "boolean", "integer", "decimal", "date", "dateTime", "time": return FHIRType(lowered)
      case "quantity": return FHIRType("Quantity")
      default: return primitives.contains(lowered) ? FHIRType(lowered) : FHIRType(n)
      }
    }
    return FHIRType(n)
  }

  /// The primitive this one specialises (`code` → `string`, `positiveInt` → `integer`).
  var parent: FHIRType? {
    switch name {
    case "code", "id", "markdown": return .string
    case "url", "canonical", "oid", "uuid": return FHIRType("uri")
    case "positiveInt", "unsignedInt": return .integer
    default: return nil
    }
  }

  /// Whether a value of this type is also a `t` (itself or a specialisation of it).
  func conforms(to t: FHIRType) -> Bool {
    var cur: FHIRType? = self
    while let c = cur {
      if c == t { return true }
      cur = c.parent
    }
    return false
  }
}

/// One item of a FHIRPath collection.
public struct Item: Sendable, Equatable {
  public var json: JSON
  /// The FHIR type when known (from a literal, a constant or a choice element), else nil.
  public var type: FHIRType?

  public init(_ json: JSON, type: FHIRType? = nil) {
    self.json = json
    self.type = type
  }

  /// Whether the item is of type `t` (or a specialisation of it). Without a known type, the JSON
  /// kind decides (a JSON string may be any string-like primitive; an object with `resourceType`
  /// is that resource; another object is taken to be of the complex type asked for).
  func isOf(_ t: FHIRType) -> Bool {
    if let type { return type.conforms(to: t) }
    switch json {
    case .bool: return t == .boolean
    case .integer:
      return ["integer", "decimal", "positiveInt", "unsignedInt", "integer64"].contains(t.name)
    case .decimal: return t == .decimal
    case .string:
      return FHIRType.primitives.contains(t.name)
        && !["boolean", "integer", "decimal", "positiveInt", "unsignedInt", "integer64"].contains(t.name)
    case .object(let o):
      if case .string(let rt)? = o["resourceType"] { return rt == t.name || t.name == "Resource" || t.name == "DomainResource" }
      return !FHIRType.primitives.contains(t.name)
    case .array, .null: return false
    }
  }

  /// The item as text for `join`, `toString`, string concatenation.
  var text: String? {
    switch json {
    case .string(let s): return s
    case .integer(let i): return String(i)
    case .decimal(let d, let s): return JSON.decimalText(d, scale: s)
    case .bool(let b): return b ? "true" : "false"
    case .object(let o):
      if let v = o["value"], let vt = Item(v).text {
        if case .string(let u)? = o["code"] ?? o["unit"] { return "\(vt) '\(u)'" }
        return vt
      }
      return nil
    default: return nil
    }
  }
}
