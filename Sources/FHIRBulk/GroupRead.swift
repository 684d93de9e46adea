import Foundation
import NDJSON

extension BulkClient {
  /// Reads `[base]/Group/{id}` and returns its members' Patient ids (C59–C61: the member list that
  /// joiners and leavers are computed from). Inactive members are left out.
  public func groupMembers(groupID: String) async throws -> [String] {
    let url = endpoint.baseURL + "/Group/" + URLText.encode(groupID)
    let r = try await exchange(.capabilities, method: .GET, url: url, accept: "application/fhir+json")
    guard r.status == 200 else { throw serverError(.capabilities, r) }
    guard let object = try? JSONSerialization.jsonObject(with: r.body) as? [String: Any],
      object["resourceType"] as? String == "Group"
    else {
      throw BulkError.protocolViolation(operation: .capabilities, detail: "GET Group/\(groupID) did not return a Group")
    }
    var ids: [String] = []
    for member in object["member"] as? [[String: Any]] ?? [] {
      if member["inactive"] as? Bool == true { continue }
      guard let entity = member["entity"] as? [String: Any], let reference = entity["reference"] as? String else { continue }
      if let id = FHIRReference.patientID(fromReference: reference) { ids.append(id) }
    }
    return ids
  }
}
