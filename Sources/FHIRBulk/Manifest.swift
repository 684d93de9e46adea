// The completion manifest (C38–C42, C64, C68 tolerance) and stable file names for its items.
import CohortBasics
import Foundation

public enum FileKind: String, Sendable, Codable, CaseIterable {
  case output, deleted, error
}

public struct ManifestItem: Sendable, Codable, Equatable, Hashable {
  public var type: String
  public var url: String
  public var count: Int?

  public init(type: String, url: String, count: Int? = nil) {
    self.type = type
    self.url = url
    self.count = count
  }
}

public struct ManifestLink: Sendable, Codable, Equatable {
  public var relation: String
  public var url: String
}

public struct Manifest: Sendable, Codable, Equatable {
  /// Verbatim text: the next `_since` (C51).
  public var transactionTime: String
  public var request: String
  public var requiresAccessToken: Bool
  public var output: [ManifestItem]
  /// Nil when the server sent no `deleted` array: "unknown", not "none" (C54).
  public var deleted: [ManifestItem]?
  public var error: [ManifestItem]
  public var link: [ManifestLink]?
  /// `Expires` response header of the completing status response, when present (C33).
  public var expires: String?
  /// Number of manifest pages merged into this one (C64).
  public var pages: Int = 1
  /// The server's bytes, verbatim, one entry per page (not encoded by Codable).
  public var rawPages: [Data] = []

  enum CodingKeys: String, CodingKey {
    case transactionTime, request, requiresAccessToken, output, deleted, error, link, expires, pages
    case outcome, outputOrganizedBy
  }

  public init(
    transactionTime: String, request: String, requiresAccessToken: Bool, output: [ManifestItem],
    deleted: [ManifestItem]?, error: [ManifestItem], link: [ManifestLink]? = nil
  ) {
    self.transactionTime = transactionTime
    self.request = request
    self.requiresAccessToken = requiresAccessToken
    self.output = output
    self.deleted = deleted
    self.error = error
    self.link = link
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    // Validate before trusting (issue 11 item 2): missing is not the same as empty.
    guard let time = try c.decodeIfPresent(String.self, forKey: .transactionTime) else {
      throw BulkError.invalidManifest("it has no transactionTime, so there is no watermark to keep")
    }
    transactionTime = time
    // STU4 drops `request` (and renames `error` to `outcome`, C68); earlier versions require it (C38).
    let stu4 = c.contains(.outcome)
    guard let request = try c.decodeIfPresent(String.self, forKey: .request) ?? (stu4 ? "" : nil) else {
      throw BulkError.invalidManifest("it has no request (the kick-off URL), which the Bulk Data IG requires")
    }
    self.request = request
    requiresAccessToken = try c.decodeIfPresent(Bool.self, forKey: .requiresAccessToken) ?? false
    guard let output = try c.decodeIfPresent([ManifestItem].self, forKey: .output) else {
      throw BulkError.invalidManifest(
        "it has no output array (an export with no data sends \"output\": []); nothing was downloaded or removed")
    }
    self.output = output
    deleted = try c.decodeIfPresent([ManifestItem].self, forKey: .deleted)
    // STU4 renames `error` to `outcome` (C68).
    error =
      try c.decodeIfPresent([ManifestItem].self, forKey: .error)
      ?? c.decodeIfPresent([ManifestItem].self, forKey: .outcome) ?? []
    link = try c.decodeIfPresent([ManifestLink].self, forKey: .link)
    expires = try c.decodeIfPresent(String.self, forKey: .expires)
    pages = try c.decodeIfPresent(Int.self, forKey: .pages) ?? 1
    // C65: organizeOutputBy (non-empty) is not supported; REF sends "" which means absent (C38).
    if let organized = try c.decodeIfPresent(String.self, forKey: .outputOrganizedBy), !organized.isEmpty {
      throw BulkError.invalidManifest(
        "the server organised output by \(organized), which this client does not support; export without organizeOutputBy")
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(transactionTime, forKey: .transactionTime)
    try c.encode(request, forKey: .request)
    try c.encode(requiresAccessToken, forKey: .requiresAccessToken)
    try c.encode(output, forKey: .output)
    try c.encodeIfPresent(deleted, forKey: .deleted)
    try c.encode(error, forKey: .error)
    try c.encodeIfPresent(link, forKey: .link)
    try c.encodeIfPresent(expires, forKey: .expires)
    try c.encode(pages, forKey: .pages)
  }

  /// The `next` page link (C64).
  public var nextURL: String? { link?.first { $0.relation == "next" }?.url }

  /// `transactionTime` parsed (Z, offsets, fractions; C41).
  public var transactionDate: Date? { FHIRInstant.parse(transactionTime) }

  /// The default tolerance for a server clock ahead of ours.
  public static let defaultClockSkew: TimeInterval = 60

  /// True when `transactionTime` is later than `now` by more than `skew` seconds: the server's
  /// clock is ahead, and the value must not be stored as the next `_since` (every later
  /// incremental would then fetch nothing).
  public func transactionTimeIsInFuture(now: Date = Date(), skew: TimeInterval = Manifest.defaultClockSkew) -> Bool {
    guard let date = transactionDate else { return false }
    return date.timeIntervalSince(now) > skew
  }

  /// Items of one kind.
  public func items(_ kind: FileKind) -> [ManifestItem] {
    switch kind {
    case .output: return output
    case .deleted: return deleted ?? []
    case .error: return error
    }
  }

  /// Parses and checks one manifest page (C38, C39).
  public static func parse(_ data: Data) throws -> Manifest {
    var m: Manifest
    do {
      m = try JSONDecoder().decode(Manifest.self, from: data)
    } catch let e as BulkError {
      throw e
    } catch {
      throw BulkError.invalidManifest("not a Bulk Data manifest (\(Self.describe(error)))")
    }
    guard FHIRInstant.isValid(m.transactionTime) else {
      throw BulkError.invalidManifest("transactionTime '\(m.transactionTime)' is not a FHIR instant")
    }
    for kind in FileKind.allCases {
      for item in m.items(kind) {
        guard URLText.isAbsoluteHTTP(item.url) else {
          throw BulkError.invalidManifest("\(kind.rawValue) item url '\(item.url)' is not an absolute http(s) URL")
        }
        guard FHIRResourceTypes.isSafeTypeName(item.type) else {
          throw BulkError.invalidManifest(
            "\(kind.rawValue) item type '\(item.type)' is not a resource type name and could place a file outside the export folder")
        }
        if let count = item.count, count < 0 {
          throw BulkError.invalidManifest("\(kind.rawValue) item \(item.url) has a negative count")
        }
      }
    }
    m.rawPages = [data]
    m.pages = 1
    return m
  }

  /// Appends a later page's items (C64). The first page's transactionTime/request win.
  public mutating func merge(page: Manifest) {
    output += page.output
    if let d = page.deleted { deleted = (deleted ?? []) + d }
    error += page.error
    link = page.link
    pages += page.pages
    rawPages += page.rawPages
  }

  static func describe(_ error: any Error) -> String {
    switch error {
    case DecodingError.keyNotFound(let key, _): return "missing \(key.stringValue)"
    case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx):
      return "wrong type at \(ctx.codingPath.map(\.stringValue).joined(separator: "."))"
    case DecodingError.dataCorrupted: return "not JSON"
    default: return "unreadable"
    }
  }
}

/// One file to download, with its stable place in the export folder.
public struct PlannedFile: Sendable, Equatable, Hashable {
  public var kind: FileKind
  public var item: ManifestItem
  /// 1-based position among the items of the same kind and type, in manifest order.
  public var ordinal: Int
  /// `Type.N.ndjson`, `deleted/Type.N.ndjson` or `error/Type.N.ndjson`.
  public var relativePath: String
}

public enum FileNaming {
  /// Assigns `Type.1`, `Type.2`, … by order of appearance per kind (the lead's layout). Refuses a
  /// type that is not `^[A-Z][A-Za-z]{0,63}$`, so no name can leave the export folder.
  public static func plan(_ manifest: Manifest) throws -> [PlannedFile] {
    var out: [PlannedFile] = []
    for kind in FileKind.allCases {
      var counters: [String: Int] = [:]
      for item in manifest.items(kind) {
        guard FHIRResourceTypes.isSafeTypeName(item.type) else {
          throw BulkError.invalidManifest(
            "type '\(item.type)' would not make a safe file name inside the export folder")
        }
        let n = (counters[item.type] ?? 0) + 1
        counters[item.type] = n
        let name = "\(item.type).\(n).ndjson"
        let path = kind == .output ? name : "\(kind.rawValue)/\(name)"
        out.append(PlannedFile(kind: kind, item: item, ordinal: n, relativePath: path))
      }
    }
    return out
  }
}
