import Foundation
import Testing

@testable import NDJSON

/// `ScannedLine.patientReference`: the top-level subject/patient/beneficiary `reference`.
@Suite struct PatientReferenceScanTests {
  func reference(_ text: String) throws -> String? { try scanOne(text).get().patientReference }

  @Test func subjectPatientBeneficiary() throws {
    #expect(try reference(#"{"resourceType":"Observation","subject":{"reference":"Patient/123"}}"#) == "Patient/123")
    #expect(try reference(#"{"resourceType":"AllergyIntolerance","patient":{"reference":"urn:uuid:ab-1"}}"#) == "urn:uuid:ab-1")
    #expect(try reference(#"{"resourceType":"Coverage","beneficiary":{"display":"x","reference":"https://x/fhir/Patient/9"}}"#) == "https://x/fhir/Patient/9")
    #expect(try reference(#"{"resourceType":"Patient","id":"p"}"#) == nil)
  }

  /// Priority subject > patient > beneficiary whatever the key order.
  @Test func priorityIgnoresKeyOrder() throws {
    let s = #""subject":{"reference":"S"}"#
    let p = #""patient":{"reference":"P"}"#
    let b = #""beneficiary":{"reference":"B"}"#
    for order in [[s, p, b], [b, p, s], [p, b, s], [b, s, p]] {
      #expect(try reference("{" + order.joined(separator: ",") + "}") == "S")
    }
    #expect(try reference("{\(b),\(p)}") == "P")
    #expect(try reference("{\(p),\"id\":\"x\",\(b)}") == "P")
    #expect(try reference("{\(b),\"resourceType\":\"Coverage\"}") == "B")
  }

  /// A property that is not an object with a string `reference` is skipped for the next one.
  @Test func fallsBackWhenHigherPriorityHasNoStringReference() throws {
    let p = #""patient":{"reference":"P"}"#
    for subject in [
      #"{"display":"no reference"}"#, #"{"reference":null}"#, #"{"reference":7}"#,
      #"{"reference":{"reference":"deep"}}"#, #"[{"reference":"in array"}]"#, #""Patient/1""#,
      #"{"identifier":{"reference":"nested"}}"#, "{}", "null",
    ] {
      #expect(try reference("{\"subject\":\(subject),\(p)}") == "P", "subject \(subject)")
      #expect(try reference("{\(p),\"subject\":\(subject)}") == "P", "subject \(subject)")
      #expect(try reference("{\"subject\":\(subject)}") == nil, "subject \(subject)")
    }
  }

  @Test func nestedAndContainedAreIgnored() throws {
    let text = #"""
      {"contained":[{"resourceType":"Observation","subject":{"reference":"Patient/contained"},"patient":{"reference":"Patient/c2"}}],"extension":[{"url":"u","valueReference":{"reference":"Patient/ext"},"subject":{"reference":"Patient/ext2"}}],"meta":{"subject":{"reference":"Patient/meta"},"reference":"Patient/meta2"},"reference":"Patient/top-but-bare","focus":{"reference":"Patient/focus"},"code":{"patient":{"reference":"Patient/code"}},"resourceType":"Observation","beneficiary":{"extension":[{"reference":"Patient/inner"}],"reference":"Patient/real"}}
      """#
    #expect(try reference(text) == "Patient/real")
    let none = #"""
      {"contained":[{"subject":{"reference":"Patient/c"}}],"code":{"subject":{"reference":"Patient/x"}},"resourceType":"Observation"}
      """#
    #expect(try reference(none) == nil)
  }

  @Test func escapesInKeysAndValues() throws {
    #expect(try reference(#"{"sub\u006aect":{"refer\u0065nce":"Patient\/1\u00e9"}}"#) == "Patient/1é")
    #expect(try reference(#"{"patient":{"reference":"a\"b\\c"}}"#) == "a\"b\\c")
    // Escapes inside the holder's other strings do not disturb the span.
    #expect(try reference(#"{"subject":{"display":"x\"}{","reference":"Patient/2"}}"#) == "Patient/2")
  }

  /// Duplicate keys: the last occurrence wins, as in JSON parsers that keep the last value.
  @Test func duplicateKeysLastWins() throws {
    #expect(try reference(#"{"subject":{"reference":"A"},"subject":{"reference":"B"}}"#) == "B")
    #expect(try reference(#"{"subject":{"reference":"A"},"subject":{"display":"x"},"patient":{"reference":"P"}}"#) == "P")
    #expect(try reference(#"{"subject":{"reference":"A","reference":null}}"#) == nil)
    #expect(try reference(#"{"subject":{"reference":"A"},"subject":"str"}"#) == nil)
  }

  @Test func onlyWhenSelected() throws {
    let text = Array(#"{"resourceType":"Observation","subject":{"reference":"Patient/1"}}"#.utf8)
    for (fields, expected) in [
      (NDJSONFields.all, "Patient/1" as String?), ([.resourceType, .id], nil), ([.patientReference], "Patient/1"),
    ] {
      var s = NDJSONLineScanner(computeHash: false, fields: fields)
      var got: [ScannedLine] = []
      try text.withUnsafeBytes { try s.feed($0) { got.append($0) } }
      try s.finish { got.append($0) }
      #expect(got.count == 1 && got.first?.patientReference == expected)
      #expect(got.first?.resourceType == (fields.contains(.resourceType) ? "Observation" : nil))
    }
    #expect(NDJSONFields.all.contains(.patientReference))
  }

  @Test func invalidLinesStillRejected() {
    for text in [
      #"{"subject":{"reference":"P"}"#, #"{"subject":{"reference":"P",}}"#, #"{"subject":{"reference"}}"#,
      #"{"subject":{"reference":"P"]}"#,
    ] {
      switch scanOne(text) {
      case .failure(.invalidJSON(line: 1, _)): break
      case let other: Issue.record("\(text) gave \(other)")
      }
    }
  }

  /// Lines split at every possible byte give the same patientReference.
  @Test func everySplitPoint() throws {
    let line = #"{"meta":{"versionId":"1"},"patient":{"reference":"P"},"subject":{"display":"d","reference":"Patient/\u00e9"},"id":"o"}"#
    let bytes = Array((line + "\n" + line).utf8)
    for cut in 1..<bytes.count {
      var s = NDJSONLineScanner()
      var got: [ScannedLine] = []
      try bytes.withUnsafeBytes { all in
        try s.feed(UnsafeRawBufferPointer(rebasing: all[0..<cut])) { got.append($0) }
        try s.feed(UnsafeRawBufferPointer(rebasing: all[cut...])) { got.append($0) }
      }
      try s.finish { got.append($0) }
      #expect(got.map(\.patientReference) == ["Patient/é", "Patient/é"], "cut \(cut)")
    }
  }
}

@Suite struct FHIRReferenceTests {
  @Test(arguments: [
    ("Patient/123", "123"),
    ("https://x/fhir/Patient/123", "123"),
    ("http://x/Patient/a-b.c", "a-b.c"),
    ("Patient/123/_history/2", "123"),
    ("https://x/fhir/Patient/123/_history/2", "123"),
    ("https://x:8080/fhir/Patient/9", "9"),
  ])
  func patientIDs(reference: String, id: String) {
    #expect(FHIRReference.patientID(fromReference: reference) == id)
  }

  @Test(arguments: [
    "Group/1", "urn:uuid:5b3c1f5e-1111-2222-3333-444455556666", "urn:oid:1.2.3", "#p1", "", "Patient",
    "Patient/", "Patient//1", "Patient/1/", "Patient/a b", "Patient/1?x=2", "Patient/1#f", "patient/1",
    "Practitioner/1", "Patient/1/_history", "Patient/1/_history/", "Patient/1/x/2", "foo/Patient/1",
    "ftp://x/Patient/1", "https:/x/Patient/1", "https:///Patient/1", "Patient/_history/2",
    "Patient/" + String(repeating: "a", count: 65), "Patient/é", "https://x/fhir/Group/1/_history/2",
  ])
  func notPatientIDs(reference: String) {
    #expect(FHIRReference.patientID(fromReference: reference) == nil)
  }

  @Test func sixtyFourCharacterIdIsAccepted() {
    let id = String(repeating: "A", count: 64)
    #expect(FHIRReference.patientID(fromReference: "Patient/" + id) == id)
  }
}
