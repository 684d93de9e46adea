import Foundation
import Testing

@testable import FHIRBulk

@Suite struct ManifestTests {
  @Test func c38_minimalFullAndReferenceServerManifestsParse() throws {
    let minimal = #"{"transactionTime":"2024-05-01T10:00:00Z","request":"https://x/fhir/$export","requiresAccessToken":false,"output":[],"error":[]}"#
    let m1 = try Manifest.parse(Data(minimal.utf8))
    #expect(m1.output.isEmpty && m1.deleted == nil && !m1.requiresAccessToken)

    let full = #"{"transactionTime":"2024-05-01T10:00:00.5+02:00","request":"r","requiresAccessToken":true,"output":[{"type":"Patient","url":"https://x/f/1","count":3},{"type":"Observation","url":"https://x/f/2"},{"type":"Observation","url":"https://x/f/3"}],"deleted":[{"type":"Bundle","url":"https://x/f/d"}],"error":[{"type":"OperationOutcome","url":"https://x/f/e"}],"extension":{"x":1},"unknownKey":[1,2]}"#
    let m2 = try Manifest.parse(Data(full.utf8))
    #expect(m2.output.count == 3 && m2.deleted?.count == 1 && m2.error.count == 1)
    #expect(m2.output[0].count == 3)
    #expect(m2.transactionTime == "2024-05-01T10:00:00.5+02:00")
    #expect(m2.rawPages == [Data(full.utf8)])

    let ref = #"{"transactionTime":"2024-05-01T10:00:00+00:00","request":"r","requiresAccessToken":true,"outputOrganizedBy":"","output":[],"error":[]}"#
    #expect(try Manifest.parse(Data(ref.utf8)).transactionDate != nil)
  }

  @Test func c68_outcomeIsAcceptedForError() throws {
    let stu4 = #"{"transactionTime":"2024-05-01T10:00:00Z","requiresAccessToken":true,"output":[],"outcome":[{"type":"OperationOutcome","url":"https://x/e"}]}"#
    let m = try Manifest.parse(Data(stu4.utf8))
    #expect(m.error.count == 1 && m.request == "")
  }

  @Test func refusesBadManifests() {
    let noTime = #"{"request":"r","requiresAccessToken":true,"output":[],"error":[]}"#
    #expect(throws: BulkError.self) { try Manifest.parse(Data(noTime.utf8)) }
    let relative = #"{"transactionTime":"2024-05-01T10:00:00Z","request":"r","requiresAccessToken":true,"output":[{"type":"Patient","url":"/f/1"}],"error":[]}"#
    #expect(throws: BulkError.self) { try Manifest.parse(Data(relative.utf8)) }
    let escape = #"{"transactionTime":"2024-05-01T10:00:00Z","request":"r","requiresAccessToken":true,"output":[{"type":"../../etc/passwd","url":"https://x/f/1"}],"error":[]}"#
    #expect(throws: BulkError.self) { try Manifest.parse(Data(escape.utf8)) }
    let organized = #"{"transactionTime":"2024-05-01T10:00:00Z","request":"r","requiresAccessToken":true,"outputOrganizedBy":"Patient","output":[],"error":[]}"#
    #expect(throws: BulkError.self) { try Manifest.parse(Data(organized.utf8)) }
  }

  @Test func fileNamesAreStableByOrderOfAppearance() throws {
    let m = Manifest(
      transactionTime: "2024-05-01T10:00:00Z", request: "r", requiresAccessToken: true,
      output: [
        ManifestItem(type: "Observation", url: "https://x/1"), ManifestItem(type: "Patient", url: "https://x/2"),
        ManifestItem(type: "Observation", url: "https://x/3"),
      ],
      deleted: [ManifestItem(type: "Bundle", url: "https://x/4")],
      error: [ManifestItem(type: "OperationOutcome", url: "https://x/5")])
    let plan = try FileNaming.plan(m)
    #expect(plan.map(\.relativePath) == [
      "Observation.1.ndjson", "Patient.1.ndjson", "Observation.2.ndjson", "deleted/Bundle.1.ndjson",
      "error/OperationOutcome.1.ndjson",
    ])
    var bad = m
    bad.output.append(ManifestItem(type: "a/../../x", url: "https://x/6"))
    #expect(throws: BulkError.self) { try FileNaming.plan(bad) }
    bad.output[3].type = ".hidden"
    #expect(throws: BulkError.self) { try FileNaming.plan(bad) }
  }

  @Test func c34_transientIssueCodes() {
    let o = OperationOutcome(issue: [.init(severity: "error", code: "lock-error", diagnostics: "busy")])
    #expect(o.isTransient)
    let e = BulkError.server(operation: .status, status: 500, outcome: o, body: nil)
    #expect(e.isTransient && e.issueCodes == ["lock-error"])
    let fatal = BulkError.server(
      operation: .status, status: 500,
      outcome: OperationOutcome(issue: [.init(severity: "fatal", code: "processing", diagnostics: "boom")]), body: nil)
    #expect(!fatal.isTransient)
    #expect(fatal.description.contains("boom"))
    #expect(BulkError.server(operation: .status, status: 503, outcome: nil, body: "<html>").isTransient)
  }
}

@Suite struct CapabilityTests {
  let statement = #"""
    {"resourceType":"CapabilityStatement","fhirVersion":"4.0.1","software":{"name":"Mock","version":"1.2"},
     "rest":[{"mode":"server","operation":[{"name":"export","definition":"http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"}],
      "resource":[{"type":"Group","operation":[{"name":"export","definition":"http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"}]},
                  {"type":"Patient"},{"type":"Observation","searchParam":[{"name":"code"},{"name":"category"}]}]}]}
    """#

  @Test func parsesOperationsTypesAndSearchParams() throws {
    let s = try CapabilitySummary.parse(Data(statement.utf8))
    #expect(s.exportOperations == ["group", "system"])
    #expect(s.resourceTypes == ["Group", "Patient", "Observation"])
    #expect(s.softwareName == "Mock" && s.fhirVersion == "4.0.1")
    try s.check(level: .group("g"), parameters: ExportParameters(types: ["Patient", "Observation"], typeFilters: ["Observation?code=1"]))
  }

  @Test func refusesUndeclaredOperationTypeOrParameter() throws {
    let s = try CapabilitySummary.parse(Data(statement.utf8))
    #expect(throws: BulkError.self) { try s.check(level: .patient, parameters: ExportParameters()) }
    #expect(throws: BulkError.self) { try s.check(level: .group("g"), parameters: ExportParameters(types: ["Condition"])) }
    #expect(throws: BulkError.self) {
      try s.check(level: .group("g"), parameters: ExportParameters(typeFilters: ["Observation?status=final"]))
    }
  }
}
