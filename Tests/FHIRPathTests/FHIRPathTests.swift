import FHIRPath
import Foundation
import Testing

private func eval(_ expr: String, _ resource: String, constants: [String: [Item]] = [:]) throws -> [JSON] {
  let e = try FHIRPathExpression(expr)
  return try e.evaluate(
    resource: try JSON.parse(resource), environment: FHIRPathEnvironment(constants: constants)
  ).map(\.json)
}

private let patient = """
  {"resourceType":"Patient","id":"p1","active":true,"birthDate":"1970-06",
   "name":[{"use":"official","family":"Doe","given":["Jane","Ann"]},{"use":"maiden","family":"Roe"}],
   "deceasedBoolean":false,
   "extension":[{"url":"http://x/race","extension":[{"url":"ombCategory","valueCoding":{"code":"2106-3"}}]}],
   "link":[{"other":{"reference":"Patient/p2/_history/3"}}]}
  """

@Suite("FHIRPath evaluator")
struct FHIRPathTests {
  @Test("paths flatten arrays; indexers and first/last pick items")
  func paths() throws {
    #expect(try eval("name.family", patient) == [.string("Doe"), .string("Roe")])
    #expect(try eval("name.given", patient) == [.string("Jane"), .string("Ann")])
    #expect(try eval("name[1].family", patient) == [.string("Roe")])
    #expect(try eval("name[5].family", patient) == [])
    #expect(try eval("name.first().given.last()", patient) == [.string("Ann")])
    #expect(try eval("Patient.name.count()", patient) == [.integer(2)])
  }

  @Test("where, exists, empty and boolean logic are three-valued")
  func logic() throws {
    #expect(try eval("name.where(use = 'maiden').family", patient) == [.string("Roe")])
    #expect(try eval("name.where(use = 'x').exists()", patient) == [.bool(false)])
    #expect(try eval("telecom.empty()", patient) == [.bool(true)])
    #expect(try eval("gender = 'male'", patient) == [])  // empty operand → empty
    #expect(try eval("gender = 'male' or active", patient) == [.bool(true)])
    #expect(try eval("gender = 'male' and active", patient) == [])
    #expect(try eval("gender = 'male' and false", patient) == [.bool(false)])
    #expect(try eval("(active = false).not()", patient) == [.bool(true)])
    #expect(try eval("active implies gender.exists()", patient) == [.bool(false)])
  }

  @Test("choice types: value.ofType(Quantity) reads valueQuantity")
  func choiceTypes() throws {
    let obs = #"{"resourceType":"Observation","valueQuantity":{"value":7.25,"unit":"%"}}"#
    #expect(try eval("value.ofType(Quantity).value", obs) == [.decimal(7.25, scale: 2)])
    #expect(try eval("value.ofType(string)", obs) == [])
    #expect(try eval("deceased.ofType(boolean)", patient) == [.bool(false)])
    #expect(try eval("value is Quantity", obs) == [.bool(true)])
  }

  @Test("math and comparison")
  func math() throws {
    let r = "{}"
    #expect(try eval("2 + 3", r) == [.integer(5)])
    #expect(try eval("3 / 2", r) == [.decimal(1.5, scale: 1)])
    #expect(try eval("7 div 2 + 7 mod 2", r) == [.integer(4)])
    #expect(try eval("1.5 * 2 > 2.9", r) == [.bool(true)])
    #expect(try eval("-(2 - 5)", r) == [.integer(3)])
    #expect(try eval("'a' + 'b' & 'c'", r) == [.string("abc")])
    #expect(try eval("@2020-01-02 < @2020-03", r) == [.bool(true)])
  }

  @Test("join, extension, keys, boundaries")
  func functions() throws {
    #expect(try eval("name.given.join(', ')", patient) == [.string("Jane, Ann")])
    #expect(
      try eval("extension('http://x/race').extension('ombCategory').value.ofType(Coding).code", patient)
        == [.string("2106-3")])
    #expect(try eval("getResourceKey()", patient) == [.string("p1")])
    #expect(try eval("link.other.getReferenceKey(Patient)", patient) == [.string("p2")])
    #expect(try eval("link.other.getReferenceKey(Observation)", patient) == [])
    #expect(try eval("birthDate.lowBoundary()", patient) == [.string("1970-06-01")])
    #expect(try eval("birthDate.highBoundary()", patient) == [.string("1970-06-30")])
    #expect(try eval("1.0.lowBoundary()", "{}") == [.decimal(0.95, scale: 2)])
    #expect(try eval("@2010-10-10T10:00.highBoundary()", "{}") == [.string("2010-10-10T10:00:59.999-12:00")])
  }

  @Test("constants and %rowIndex come from the environment")
  func constants() throws {
    let e = try FHIRPathExpression("name.where(use = %u).family", constants: ["u"])
    let r = try e.evaluate(
      resource: try JSON.parse(patient),
      environment: FHIRPathEnvironment(constants: ["u": [Item(.string("maiden"))]]))
    #expect(r.map(\.json) == [.string("Roe")])
    let idx = try FHIRPathExpression("%rowIndex + 1", constants: [])
    #expect(try idx.evaluate([], environment: FHIRPathEnvironment(rowIndex: 4)).map(\.json) == [.integer(5)])
  }

  @Test("errors carry the position in the expression")
  func errors() {
    #expect(throws: FHIRPathError.syntax(expression: "name.", position: 5, message: "expected a name after '.'")) {
      try FHIRPathExpression("name.")
    }
    #expect(throws: FHIRPathError.undefinedConstant(expression: "a = %b", position: 4, name: "b")) {
      try FHIRPathExpression("a = %b", constants: [])
    }
    do {
      _ = try FHIRPathExpression("name.frobnicate()")
      Issue.record("no error")
    } catch {
      #expect(error.description.contains("unknown function 'frobnicate' at position 6"))
    }
    #expect(throws: FHIRPathError.self) { try FHIRPathExpression("@@") }
    // Several items where one is expected is an evaluation error.
    #expect(throws: FHIRPathError.self) { try eval("name.family and true", patient) }
  }

  @Test("JSON keeps decimal precision and skips unread members")
  func json() throws {
    let j = try JSON.parse(#"{"a":1.50,"b":[1,{"c":"x\"y\u00e9"}],"d":-2e3}"#)
    #expect(j["a"] == .decimal(1.5, scale: 2))
    #expect(j.jsonText == #"{"a":1.50,"b":[1,{"c":"x\"yé"}],"d":-2000}"#)
    let bytes = Array(#"{"resourceType":"Patient","text":{"div":"<div>…</div>"},"id":"7"}"#.utf8)
    let slim = try bytes.withUnsafeBufferPointer { b in
      try JSON.parse(b) { key in key.count == 2 || key.first == UInt8(ascii: "r") }
    }
    #expect(slim == .object(JSONObject([("resourceType", .string("Patient")), ("id", .string("7"))])))
    #expect(throws: JSONError.self) { try JSON.parse("{\"a\":}") }
  }
}
