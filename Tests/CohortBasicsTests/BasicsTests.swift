import CohortBasics
import Foundation
import Testing

@Suite struct BasicsTests {
  @Test("JSON string literals: quotes, backslashes and control characters escaped, Unicode kept")
  func jsonStrings() {
    #expect(JSONString.quote("plain") == #""plain""#)
    #expect(JSONString.quote("a\"b\\c\nd\te\u{1}") == #""a\"b\\c\nd\te\u0001""#)
    #expect(JSONString.quote("é ✓ 😀") == "\"é ✓ 😀\"")
    let round = try? JSONSerialization.jsonObject(with: Data(("[" + JSONString.quote("x\u{1F}\r\"y") + "]").utf8)) as? [String]
    #expect(round == ["x\u{1F}\r\"y"])
  }

  @Test("C41: FHIR instants with Z, offsets and fractions order by the moment they name")
  func instants() {
    #expect(FHIRInstant.isValid("2024-01-15T10:00:00Z") && FHIRInstant.isValid("2024-01-15T10:00:00.123+02:00"))
    #expect(!FHIRInstant.isValid("2024-01-15") && !FHIRInstant.isValid("2024-01-15T10:00:00") && !FHIRInstant.isValid("yesterday"))
    #expect(instantOrder("2024-01-15T10:00:00+02:00", "2024-01-15T09:00:00Z") == .orderedAscending)
    #expect(instantOrder("2024-01-15T10:00:00.000Z", "2024-01-15T10:00:00Z") == .orderedSame)
    #expect(parseInstant("2024-01-15T10:00:00.5Z")!.timeIntervalSince(parseInstant("2024-01-15T10:00:00Z")!) == 0.5)
  }

  @Test("did you mean: the closest name within the distance, case-insensitive, nil when nothing is close")
  func nearestNames() {
    #expect(nearest("sever", in: ["server", "cohort"]) == "server")
    #expect(nearest("OBSERVATON", in: ["Observation", "Patient"]) == "Observation")
    #expect(nearest("xyz", in: ["server", "cohort"]) == nil)
    #expect(nearest("Patients", in: ["Patient", "Practitioner"], maxDistance: 1) == "Patient")
    #expect(editDistance("kitten", "sitting") == 3)
  }
}
