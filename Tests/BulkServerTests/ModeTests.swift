import CohortTestSupport
import AsyncHTTPClient
import Foundation
import NIOHTTP1
import Testing

@testable import BulkServer

/// Server modes (issue 10 item 7): no deletions reported, patient= ignored; `_typeFilter` lists.
@Suite struct ModeTests {
  static let start = "2026-01-05T09:00:00Z"

  /// A server that never reports deletions: no `deleted` in a `_since` manifest (C60), set at start or at runtime.
  @Test func noDeletedMode() async throws {
    try await withServer { s in
      let report = try await s.advance(days: 3)
      #expect(report.deletedCount > 0)
      let url = s.baseURL + "/$export?_type=Observation&_since=" + URLTools.percentEncode(Self.start)
      let reported = try await HTTP.export(url)
      #expect((reported.manifest["deleted"] as? [Any])?.isEmpty == false)
      await s.setFaults(Faults(noDeleted: true))
      let silent = try await HTTP.export(url)
      #expect(silent.manifest["deleted"] == nil)
      #expect(silent.manifest["output"] != nil)
      #expect(!silent.manifestText.contains("deleted"))
    }
    try await withServer({ $0.faults.noDeleted = true }) { s in
      _ = try await s.advance(days: 3)
      let e = try await HTTP.export(s.baseURL + "/$export?_since=" + URLTools.percentEncode(Self.start))
      #expect(e.manifest["deleted"] == nil)
    }
  }

  static func postKickoff(_ url: String, patients: [String], types: String) async throws -> HTTPReply {
    var parameter: [[String: Any]] = [["name": "_type", "valueString": types]]
    for p in patients { parameter.append(["name": "patient", "valueReference": ["reference": "Patient/" + p]]) }
    let body = try JSONSerialization.data(withJSONObject: ["resourceType": "Parameters", "parameter": parameter])
    return try await HTTP.send(
      url, method: .POST, headers: HTTP.kickoffHeaders.merging(["Content-Type": "application/fhir+json"]) { a, _ in a }, body: body)
  }

  /// A server that ignores patient= (C21): the whole Group, and a warning OperationOutcome in `error`.
  @Test func ignorePatientMode() async throws {
    try await withServer({ $0.faults.ignorePatient = true }) { s in
      let k = try await Self.postKickoff(s.baseURL + "/Group/all-patients/$export", patients: ["pat-3", "pat-5"], types: "Patient")
      #expect(k.status == 202)
      let (m, _) = try await HTTP.poll(try #require(k.header("Content-Location")))
      var patients: [String] = []
      for item in m.json["output"] as? [[String: Any]] ?? [] {
        patients += ids(try await HTTP.get(item["url"] as! String).lines)
      }
      #expect(patients.count == 40)
      let errors = try #require(m.json["error"] as? [[String: Any]])
      #expect(errors.count == 1)
      #expect(errors.first?["type"] as? String == "OperationOutcome")
      let outcome = try #require(try await HTTP.get(errors[0]["url"] as! String).lines.first)
      let issue = try #require((outcome["issue"] as? [[String: Any]])?.first)
      #expect(issue["severity"] as? String == "warning")
      let text = issue["diagnostics"] as? String ?? ""
      #expect(text.contains("patient") && text.contains("ignored"))
      #expect(!text.contains("pat-3"))  // no patient ids in diagnostics
    }
    // Off again at runtime: patient= is honoured, no warning.
    try await withServer({ $0.faults.ignorePatient = true }) { s in
      await s.setFaults(Faults())
      let k = try await Self.postKickoff(s.baseURL + "/Group/all-patients/$export", patients: ["pat-3"], types: "Patient")
      let (m, _) = try await HTTP.poll(try #require(k.header("Content-Location")))
      #expect((m.json["error"] as? [Any])?.isEmpty == true)
      let url = try #require((m.json["output"] as? [[String: Any]])?.first?["url"] as? String)
      #expect(ids(try await HTTP.get(url).lines) == ["pat-3"])
    }
  }

  static func observationIDs(_ s: BulkDataServer, _ query: String) async throws -> Set<String> {
    Set(ids(try await HTTP.export(s.baseURL + "/$export?_type=Observation" + query).output["Observation"] ?? []))
  }

  static func category(_ line: [String: Any]) -> Set<String> {
    Set(((line["category"] as? [[String: Any]]) ?? []).flatMap { (($0["coding"] as? [[String: Any]]) ?? []).compactMap { $0["code"] as? String } })
  }

  /// C20: a comma-separated `_typeFilter` list is OR-ed per type, as the IG defines.
  @Test func typeFilterLists() async throws {
    try await withServer { s in
      let tf = "&_typeFilter="
      let lab = try await Self.observationIDs(s, tf + URLTools.percentEncode("Observation?category=laboratory"))
      let vital = try await Self.observationIDs(s, tf + URLTools.percentEncode("Observation?category=vital-signs"))
      #expect(!lab.isEmpty && !vital.isEmpty)
      #expect(lab.isDisjoint(with: vital))
      // The IG's form: each query percent-encoded, joined by literal commas.
      let list = try await Self.observationIDs(
        s, tf + URLTools.percentEncode("Observation?category=laboratory") + "," + URLTools.percentEncode("Observation?category=vital-signs"))
      #expect(list == lab.union(vital))
      // The whole list encoded once, repeated parameters, and OR-ed values all agree.
      #expect(try await Self.observationIDs(s, tf + URLTools.percentEncode("Observation?category=laboratory,Observation?category=vital-signs")) == list)
      #expect(
        try await Self.observationIDs(
          s, tf + URLTools.percentEncode("Observation?category=laboratory") + tf + URLTools.percentEncode("Observation?category=vital-signs"))
          == list)
      #expect(try await Self.observationIDs(s, tf + URLTools.percentEncode("Observation?category=laboratory,vital-signs")) == list)

      // Each type is filtered independently; an unfiltered type is whole.
      let mixed = try await HTTP.export(
        s.baseURL + "/$export?_type=Observation,Condition,Patient" + tf
          + URLTools.percentEncode("Observation?category=laboratory,Condition?clinical-status=active"))
      #expect(Set(ids(mixed.output["Observation"] ?? [])) == lab)
      #expect((mixed.output["Observation"] ?? []).allSatisfy { Self.category($0) == ["laboratory"] })
      let conditions = mixed.output["Condition"] ?? []
      #expect(!conditions.isEmpty)
      #expect(conditions.allSatisfy { "\($0["clinicalStatus"] ?? "")".contains("active") })
      #expect(mixed.output["Patient"]?.count == 40)
    }
  }

  @Test func typeFilterListParsing() throws {
    let types = ["Observation", "Condition", "MedicationRequest"]
    let two = try Filters.parseList("Observation?code=a,b&status=final,Condition?clinical-status=active", knownTypes: types)
    #expect(two.map(\.type) == ["Observation", "Condition"])
    #expect(two[0].criteria.map(\.0) == ["code", "status"])
    #expect(two[0].criteria.map(\.1) == ["a,b", "final"])
    #expect(two[1].criteria.map(\.1) == ["active"])
    // A comma before a value that merely contains '?' later stays in the value unless it looks like Type?.
    let one = try Filters.parseList("Observation?code=http://loinc.org|4548-4,http://loinc.org|2339-0", knownTypes: types)
    #expect(one.count == 1 && one[0].criteria[0].1 == "http://loinc.org|4548-4,http://loinc.org|2339-0")
    #expect(throws: RequestError.self) { try Filters.parseList("Observation?code=a,Claim?status=x", knownTypes: types) }
    #expect(throws: RequestError.self) { try Filters.parseList(",", knownTypes: types) }
  }
}
