import Foundation
import NDJSON

/// A Group's membership as read from the server: known (possibly empty), or unknown because the
/// Group came without its `member` list (large Groups, `_summary`) — then no leavers may be
/// computed (issue 11 item 2).
public enum GroupMembership: Sendable, Equatable {
  case known([String])
  case unknown(reason: String)

  /// The member ids when known, nil when unknown.
  public var ids: [String]? {
    if case .known(let ids) = self { return ids }
    return nil
  }
}

extension BulkClient {
  /// Reads `[base]/Group/{id}` and returns its members' Patient ids (C59–C61: the member list that
  /// joiners and leavers are computed from). Inactive members are left out. A Group without
  /// `member`, or with an empty `member` but a positive `quantity`, is `.unknown`.
  public func groupMembers(groupID: String) async throws -> GroupMembership {
    let url = endpoint.baseURL + "/Group/" + URLText.encode(groupID)
    let r = try await exchange(.groupRead, method: .GET, url: url, accept: "application/fhir+json")
    guard r.status == 200 else { throw serverError(.groupRead, r) }
    guard let object = try? JSONSerialization.jsonObject(with: r.body) as? [String: Any],
      object["resourceType"] as? String == "Group"
    else {
      throw BulkError.protocolViolation(operation: .groupRead, detail: "GET Group/\(groupID) did not return a Group")
    }
    guard let members = object["member"] as? [[String: Any]] else {
      if object["member"] != nil {
        throw BulkError.protocolViolation(operation: .groupRead, detail: "Group/\(groupID) has a `member` that is not an array")
      }
      return .unknown(reason: "Group/\(groupID) was returned without its member list (large Groups and _summary leave it out)")
    }
    if members.isEmpty, let quantity = object["quantity"] as? Int, quantity > 0 {
      return .unknown(reason: "Group/\(groupID) says it has \(quantity) members but lists none")
    }
    var ids: [String] = []
    for member in members {
      if member["inactive"] as? Bool == true { continue }
      guard let entity = member["entity"] as? [String: Any], let reference = entity["reference"] as? String else { continue }
      if let id = FHIRReference.patientID(fromReference: reference) { ids.append(id) }
    }
    return .known(ids)
  }
}
