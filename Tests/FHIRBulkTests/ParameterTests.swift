import CohortBasics
import Foundation
import Testing

@testable import FHIRBulk

@Suite struct KickoffURLTests {
  let client = BulkClient(endpoint: BulkEndpoint(baseURL: "https://x.test/fhir/"))

  @Test func c13_defaultIsGETWithQuery() throws {
    let p = ExportParameters(types: ["Patient", "Observation"])
    #expect(client.kickoffURL(level: .group("abc"), parameters: p) == "https://x.test/fhir/Group/abc/$export?_type=Patient,Observation")
    #expect(client.kickoffURL(level: .patient, parameters: ExportParameters()) == "https://x.test/fhir/Patient/$export")
    #expect(client.kickoffURL(level: .system, parameters: ExportParameters()) == "https://x.test/fhir/$export")
    #expect(client.kickoffBody(parameters: p) == nil)
  }

  @Test func c14_groupIdIsOneEncodedSegmentAndExportStaysLiteral() {
    let url = client.kickoffURL(level: .group("a/b c"), parameters: ExportParameters())
    #expect(url == "https://x.test/fhir/Group/a%2Fb%20c/$export")
    #expect(!url.contains("%24"))
  }

  @Test func c18_sinceIsPercentEncodedAndBareDateRejected() throws {
    let p = ExportParameters(since: "2024-01-15T10:00:00.123+02:00")
    try p.validate(method: .get)
    #expect(client.kickoffURL(level: .system, parameters: p).hasSuffix("?_since=2024-01-15T10%3A00%3A00.123%2B02%3A00"))
    #expect(throws: BulkError.self) { try ExportParameters(since: "2024-01-15").validate(method: .get) }
    #expect(throws: BulkError.self) { try ExportParameters(since: "2024-01-15T10:00Z").validate(method: .get) }
    #expect(throws: BulkError.self) { try ExportParameters(since: "2024-01-15T10:00:00").validate(method: .get) }
  }

  @Test func c62_untilEncodedLikeSinceAndOrdered() throws {
    let p = ExportParameters(since: "2024-01-01T00:00:00Z", until: "2024-02-01T00:00:00+01:00")
    try p.validate(method: .get)
    #expect(client.kickoffURL(level: .system, parameters: p).contains("&_until=2024-02-01T00%3A00%3A00%2B01%3A00"))
    let reversed = ExportParameters(since: "2024-03-01T00:00:00Z", until: "2024-02-01T00:00:00Z")
    #expect(throws: BulkError.self) { try reversed.validate(method: .get) }
  }

  @Test func c19_unknownTypeRejectedLocally() {
    do {
      try ExportParameters(types: ["Patient", "Observaton"]).validate(method: .get)
      Issue.record("expected a refusal")
    } catch let e as BulkError {
      #expect(e.description.contains("Observaton"))
      #expect(e.description.contains("nothing was sent"))
    } catch { Issue.record("wrong error \(error)") }
  }

  @Test func c20_typeFilterEncodedAndSortRejected() throws {
    let p = ExportParameters(types: ["MedicationRequest"], typeFilters: ["MedicationRequest?status=active"])
    try p.validate(method: .get)
    #expect(client.kickoffURL(level: .system, parameters: p).contains("_typeFilter=MedicationRequest%3Fstatus%3Dactive"))
    #expect(throws: BulkError.self) {
      try ExportParameters(typeFilters: ["Observation?_sort=date"]).validate(method: .get)
    }
    #expect(throws: BulkError.self) {
      try ExportParameters(typeFilters: ["Observation?_include=Observation:subject"]).validate(method: .get)
    }
    #expect(throws: BulkError.self) { try ExportParameters(typeFilters: ["status=active"]).validate(method: .get) }
  }

  @Test func c63_twoFiltersAreTwoRepeatedParameters() throws {
    let p = ExportParameters(typeFilters: ["Observation?code=1234-5", "Observation?category=laboratory"])
    try p.validate(method: .get)
    let q = client.kickoffURL(level: .system, parameters: p)
    #expect(q.components(separatedBy: "_typeFilter=").count == 3)
  }

  @Test(arguments: ["application/fhir+ndjson", "application/ndjson", "ndjson"])
  func c17_outputFormatValuesAreSentEncoded(_ format: String) throws {
    let p = ExportParameters(outputFormat: format)
    try p.validate(method: .get)
    let url = client.kickoffURL(level: .system, parameters: p)
    #expect(url.hasSuffix("?_outputFormat=" + format.replacingOccurrences(of: "/", with: "%2F").replacingOccurrences(of: "+", with: "%2B")))
  }

  @Test func c17_unknownOutputFormatRejected() {
    #expect(throws: BulkError.self) { try ExportParameters(outputFormat: "text/csv").validate(method: .get) }
  }

  @Test func c21_patientIsPostOnlyAndElementsAndAssociatedDataChecked() throws {
    let p = ExportParameters(patients: ["Patient/123"])
    #expect(throws: BulkError.self) { try p.validate(method: .get) }
    try p.validate(method: .post)
    #expect(throws: BulkError.self) { try ExportParameters(patients: ["123"]).validate(method: .post) }
    try ExportParameters(elements: ["id", "Patient.birthDate"], includeAssociatedData: ["LatestProvenanceResources", "_mine"])
      .validate(method: .get)
    #expect(throws: BulkError.self) { try ExportParameters(elements: ["Foo.bar"]).validate(method: .get) }
    #expect(throws: BulkError.self) { try ExportParameters(includeAssociatedData: ["All"]).validate(method: .get) }
  }

  @Test func c13_postProducesAParametersBodyAndABareURL() throws {
    let post = BulkClient(endpoint: BulkEndpoint(baseURL: "https://x.test/fhir", kickoffMethod: .post))
    let p = ExportParameters(types: ["Patient", "Observation"], since: "2024-01-01T00:00:00Z", patients: ["Patient/1"])
    #expect(post.kickoffURL(level: .group("g"), parameters: p) == "https://x.test/fhir/Group/g/$export")
    let body = try #require(post.kickoffBody(parameters: p))
    let json = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
    #expect(json["resourceType"] as? String == "Parameters")
    let params = try #require(json["parameter"] as? [[String: Any]])
    #expect(params.filter { $0["name"] as? String == "_type" }.compactMap { $0["valueString"] as? String } == ["Patient", "Observation"])
    #expect(params.contains { $0["name"] as? String == "_since" && $0["valueInstant"] as? String == "2024-01-01T00:00:00Z" })
    let ref = params.first { $0["name"] as? String == "patient" }?["valueReference"] as? [String: Any]
    #expect(ref?["reference"] as? String == "Patient/1")
  }

  @Test func c41_instantsParseWithZOffsetsAndFractions() throws {
    let a = try #require(FHIRInstant.parse("2024-05-01T10:00:00Z"))
    let b = try #require(FHIRInstant.parse("2024-05-01T12:00:00+02:00"))
    let c = try #require(FHIRInstant.parse("2024-05-01T10:00:00.250+00:00"))
    #expect(a == b)
    #expect(abs(c.timeIntervalSince(a) - 0.25) < 0.0001)
    #expect(FHIRInstant.parse("2024-13-01T10:00:00Z") == nil)
  }
}
