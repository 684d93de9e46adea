import CohortTestSupport
import AsyncHTTPClient
import Foundation
import Testing

@testable import BulkServer

@Suite struct ExportTests {
  @Test func capabilityStatementAndUnknownPaths() async throws {
    try await withServer { s in
      let m = try await HTTP.get(s.baseURL + "/metadata")
      #expect(m.status == 200)
      #expect(m.json["resourceType"] as? String == "CapabilityStatement")
      #expect((m.json["software"] as? [String: Any])?["name"] as? String == "cohort BulkServer")
      #expect(m.text.contains("group-export") && m.text.contains("patient-export"))
      let unknown = try await HTTP.get(s.baseURL + "/nope/at/all")
      #expect(unknown.status == 404)
      #expect(unknown.issue?.code == "not-found")
      let wrongMethod = try await HTTP.send(s.baseURL + "/metadata", method: .DELETE)
      #expect(wrongMethod.status == 405)
      #expect(wrongMethod.issue != nil)
    }
  }

  /// C13, C23, C29, C33, C38, C39, C44, C35/C36, C70: the whole flow on the standard flavor.
  @Test func groupExportFlowThenDelete() async throws {
    try await withServer({ $0.pollsBeforeComplete = 2 }) { s in
      let k = try await HTTP.kickoff(s.baseURL + "/Group/diabetes-patients/$export")
      #expect(k.status == 202)
      let location = try #require(k.header("Content-Location"))
      #expect(location == s.baseURL + "/$export-status/1")
      let p1 = try await HTTP.get(location)
      #expect(p1.status == 202)
      #expect(p1.header("X-Progress") != nil)
      #expect(p1.header("Retry-After") == "1")
      let (m, pending) = try await HTTP.poll(location)
      #expect(pending == 1)
      #expect(m.status == 200)
      #expect(m.header("Content-Type") == "application/json")
      let manifest = m.json
      #expect(manifest["transactionTime"] as? String == "2026-01-05T09:00:01Z")
      #expect(manifest["request"] as? String == s.baseURL + "/Group/diabetes-patients/$export")
      #expect(manifest["requiresAccessToken"] as? Bool == false)
      #expect(manifest["deleted"] == nil)
      #expect((manifest["error"] as? [Any])?.isEmpty == true)
      let output = try #require(manifest["output"] as? [[String: Any]])
      let types = output.compactMap { $0["type"] as? String }
      #expect(types.first == "Patient")
      #expect(types.contains("Observation") && types.contains("Condition"))
      var patientIDs: [String] = []
      for item in output {
        let f = try await HTTP.get(item["url"] as! String, headers: ["Accept": "application/fhir+ndjson"])
        #expect(f.status == 200)
        #expect(f.header("Content-Type") == "application/fhir+ndjson")
        let lines = f.lines
        #expect(lines.count == item["count"] as? Int)
        #expect(lines.allSatisfy { $0["resourceType"] as? String == item["type"] as? String })
        #expect(lines.allSatisfy { (($0["meta"] as? [String: Any])?["versionId"] as? String) != nil })
        if item["type"] as? String == "Patient" { patientIDs = ids(lines) }
        if item["type"] as? String == "Condition" {
          // Every member has a diabetes Condition.
          let diabetic = Set(lines.filter { ($0["code"] as? [String: Any]).map { "\($0)".contains("44054006") } ?? false }
            .compactMap { (($0["subject"] as? [String: Any])?["reference"] as? String)?.replacingOccurrences(of: "Patient/", with: "") })
          #expect(diabetic.isSuperset(of: Set(patientIDs)))
        }
      }
      #expect(!patientIDs.isEmpty)
      // The Group read lists the same members.
      let g = try await HTTP.get(s.baseURL + "/Group/diabetes-patients")
      #expect(g.status == 200)
      let members = (g.json["member"] as? [[String: Any]] ?? []).compactMap { ($0["entity"] as? [String: Any])?["reference"] as? String }
      #expect(members == patientIDs.map { "Patient/" + $0 })
      // DELETE frees the job; then the status is 404 with an OperationOutcome (C35, C36, C70).
      let d = try await HTTP.send(location, method: .DELETE)
      #expect(d.status == 202)
      let gone = try await HTTP.get(location)
      #expect(gone.status == 404)
      #expect(gone.issue?.code == "not-found")
      let file = try await HTTP.get(output[0]["url"] as! String)
      #expect(file.status == 404)
    }
  }

  /// Same seed and same requests → byte-identical manifests and files.
  @Test func deterministicForASeed() async throws {
    func run() async throws -> (String, [String: Data]) {
      try await withServer({ $0.seed = 7; $0.resourcesPerFile = 50 }) { s in
        let e = try await HTTP.export(s.baseURL + "/$export")
        return (e.manifestText.replacingOccurrences(of: s.baseURL, with: "BASE"), e.raw)
      }
    }
    let (m1, f1) = try await run()
    let (m2, f2) = try await run()
    #expect(m1 == m2)
    #expect(f1 == f2)
    #expect(f1.count > 5)  // Observation split into several files of 50
    #expect(m1.contains("Observation.2.ndjson"))
  }

  /// 400/404 OperationOutcomes for bad kick-offs (C15, C16, C17, C18, C19, C21, C25).
  @Test func badKickoffs() async throws {
    try await withServer { s in
      let b = s.baseURL
      func expect(_ url: String, _ status: Int, headers: [String: String] = HTTP.kickoffHeaders, _ text: String) async throws {
        let r = try await HTTP.send(url, headers: headers)
        #expect(r.status == status, "\(url)")
        #expect(r.issue?.diagnostics.contains(text) == true, "\(url): \(r.text)")
      }
      try await expect(b + "/Group/nope/$export", 404, "Group 'nope'")
      try await expect(b + "/$export?_type=Claim", 400, "_type 'Claim'")
      try await expect(b + "/$export?_since=2024-01-15", 400, "not a FHIR instant")
      try await expect(b + "/$export?_since=2030-01-01T00:00:00Z", 400, "in the future")
      try await expect(b + "/$export?_outputFormat=text/csv", 400, "_outputFormat")
      try await expect(b + "/$export?_typeFilter=Observation%3Fcolor%3Dred", 400, "unsupported search parameters")
      try await expect(b + "/Patient/$export?patient=Patient/pat-1", 400, "POST")
      try await expect(b + "/$export?bogus=1", 400, "unknown $export parameter")
      try await expect(b + "/$export", 400, headers: ["Accept": "application/fhir+json"], "Prefer: respond-async")
      try await expect(b + "/$export", 400, headers: ["Accept": "text/html", "Prefer": "respond-async"], "Accept")
      try await expect(b + "/$export-status/999", 404, "no export job")
      // Lenient handling ignores what it cannot do and says so in the error file.
      let lenient = try await HTTP.export(b + "/$export?_type=Patient,Claim", headers: ["Prefer": "respond-async, handling=lenient"])
      #expect(Array(lenient.output.keys) == ["Patient"])
      #expect(((lenient.manifest["error"] as? [Any])?.count ?? 0) == 1)
      // All three _outputFormat values are accepted (C17, C70).
      for f in ["application/fhir+ndjson", "application/ndjson", "ndjson"] {
        let r = try await HTTP.kickoff(b + "/$export?_type=Patient&_outputFormat=" + URLTools.percentEncode(f))
        #expect(r.status == 202, "\(f)")
      }
    }
  }

  /// _type, _typeFilter (code, status, date), _elements, POST with patient (C19, C20, C21, C63).
  @Test func parameters() async throws {
    try await withServer { s in
      let b = s.baseURL
      let typed = try await HTTP.export(b + "/Patient/$export?_type=Patient,Observation")
      #expect(Set(typed.output.keys) == ["Patient", "Observation"])
      #expect(typed.output["Patient"]?.count == 40)

      let a1c = try await HTTP.export(b + "/$export?_type=Observation&_typeFilter=" + URLTools.percentEncode("Observation?code=http://loinc.org|4548-4"))
      let obs = try #require(a1c.output["Observation"])
      #expect(!obs.isEmpty)
      #expect(obs.allSatisfy { "\($0["code"] ?? "")".contains("4548-4") })
      #expect(obs.count < typed.output["Observation"]!.count)

      // Two filters for one type are OR-ed.
      let either = try await HTTP.export(
        b + "/$export?_type=Observation&_typeFilter=" + URLTools.percentEncode("Observation?code=4548-4") + "&_typeFilter="
          + URLTools.percentEncode("Observation?code=2339-0"))
      #expect(either.output["Observation"]!.count > obs.count)

      let active = try await HTTP.export(b + "/$export?_type=MedicationRequest&_typeFilter=" + URLTools.percentEncode("MedicationRequest?status=active"))
      #expect(active.output["MedicationRequest"]?.allSatisfy { $0["status"] as? String == "active" } == true)

      let recent = try await HTTP.export(b + "/$export?_type=Encounter&_typeFilter=" + URLTools.percentEncode("Encounter?date=ge2025-06-01"))
      let all = try await HTTP.export(b + "/$export?_type=Encounter")
      #expect(recent.output["Encounter"]!.count < all.output["Encounter"]!.count)
      #expect(recent.output["Encounter"]!.allSatisfy { (($0["period"] as? [String: Any])?["start"] as? String ?? "") >= "2025-06-01" })

      let elements = try await HTTP.export(b + "/$export?_type=Patient&_elements=gender")
      let p = try #require(elements.output["Patient"]?.first)
      #expect(p["gender"] != nil && p["name"] == nil && p["id"] != nil)
      #expect("\(p["meta"] ?? "")".contains("SUBSETTED"))

      // POST Parameters with patient= (C13, C21).
      let params: [String: Any] = [
        "resourceType": "Parameters",
        "parameter": [
          ["name": "_type", "valueString": "Patient,Condition"],
          ["name": "patient", "valueReference": ["reference": "Patient/pat-3"]],
          ["name": "patient", "valueReference": ["reference": "Patient/pat-5"]],
        ],
      ]
      let body = try JSONSerialization.data(withJSONObject: params)
      let k = try await HTTP.send(
        b + "/Patient/$export", method: .POST,
        headers: HTTP.kickoffHeaders.merging(["Content-Type": "application/fhir+json"]) { a, _ in a }, body: body)
      #expect(k.status == 202)
      let (m, _) = try await HTTP.poll(try #require(k.header("Content-Location")))
      #expect((m.json["request"] as? String) == b + "/Patient/$export")
      var patients: [String] = []
      for item in m.json["output"] as? [[String: Any]] ?? [] where item["type"] as? String == "Patient" {
        patients += ids(try await HTTP.get(item["url"] as! String).lines)
      }
      #expect(patients == ["pat-3", "pat-5"])
    }
  }

  @Test func groupsAndSearch() async throws {
    try await withServer { s in
      let all = try await HTTP.get(s.baseURL + "/Group/all-patients")
      #expect((all.json["member"] as? [Any])?.count == 40)
      #expect(all.json["quantity"] as? Int == 40)
      let hyper = try await HTTP.get(s.baseURL + "/Group/hypertension")
      let n = (hyper.json["member"] as? [Any])?.count ?? 0
      #expect(n > 0 && n < 40)
      let search = try await HTTP.get(s.baseURL + "/Group?identifier=urn:cohort:group|diabetes-patients")
      #expect(search.json["total"] as? Int == 1)
      let missing = try await HTTP.get(s.baseURL + "/Group/unknown")
      #expect(missing.status == 404)
    }
  }
}
