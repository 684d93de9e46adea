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
  ///
  /// Memory: the body is decoded into the member references only (`JSONDecoder` over the bytes), never into a
  /// tree of Foundation objects — a `JSONSerialization` tree costs kilobytes per member (≈ 6 KB measured,
  /// 65 MB for 10,000 members), so a 100,000-patient Group alone made the export's peak RSS grow with the cohort.
  public func groupMembers(groupID: String) async throws -> GroupMembership {
    let url = endpoint.baseURL + "/Group/" + URLText.encode(groupID)
    let r = try await exchange(.groupRead, method: .GET, url: url, accept: "application/fhir+json")
    guard r.status == 200 else { throw serverError(.groupRead, r) }
    guard let group = try? JSONDecoder().decode(GroupDocument.self, from: r.body), group.resourceType == "Group" else {
      throw BulkError.protocolViolation(operation: .groupRead, detail: "GET Group/\(groupID) did not return a Group")
    }
    guard let members = group.member else {
      if group.hasMember {
        throw BulkError.protocolViolation(operation: .groupRead, detail: "Group/\(groupID) has a `member` that is not an array")
      }
      return .unknown(reason: "Group/\(groupID) was returned without its member list (large Groups and _summary leave it out)")
    }
    if members.isEmpty, let quantity = group.quantity, quantity > 0 {
      return .unknown(reason: "Group/\(groupID) says it has \(quantity) members but lists none")
    }
    var ids: [String] = []
    ids.reserveCapacity(members.count)
    for member in members where !member.inactive {
      guard let reference = member.reference else { continue }
      if let id = FHIRReference.patientID(fromReference: reference) { ids.append(id) }
    }
    return .known(ids)
  }
}

/// The parts of a Group that membership needs; every other element is skipped without being materialized.
/// Lenient like the reader it replaces: a `quantity` or `inactive` of the wrong type counts as absent, a member
/// without `entity.reference` is skipped, and a `member` that is not an array of objects is reported.
private struct GroupDocument: Decodable {
  var resourceType: String?
  var quantity: Int?
  /// nil when absent or not an array of objects (`hasMember` tells which).
  var member: [GroupMember]?
  var hasMember = false

  enum CodingKeys: String, CodingKey { case resourceType, quantity, member }

  init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    resourceType = try? c.decodeIfPresent(String.self, forKey: .resourceType)
    quantity = try? c.decodeIfPresent(Int.self, forKey: .quantity)
    if c.contains(.member) {
      hasMember = true
      member = try? c.decode([GroupMember].self, forKey: .member)
    }
  }
}

private struct GroupMember: Decodable {
  var reference: String?
  var inactive = false

  enum CodingKeys: String, CodingKey { case entity, inactive }
  enum EntityKeys: String, CodingKey { case reference }

  init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    inactive = (try? c.decodeIfPresent(Bool.self, forKey: .inactive)) == true
    if let entity = try? c.nestedContainer(keyedBy: EntityKeys.self, forKey: .entity) {
      reference = try? entity.decodeIfPresent(String.self, forKey: .reference)
    }
  }
}
