// OperationOutcome as servers send it on errors (C25, C27, C34).
import Foundation

public struct OperationOutcome: Sendable, Codable, Equatable {
  public struct Issue: Sendable, Codable, Equatable {
    public struct Details: Sendable, Codable, Equatable {
      public var text: String?
    }
    public var severity: String?
    public var code: String?
    public var diagnostics: String?
    public var details: Details?

    public init(severity: String?, code: String?, diagnostics: String?, detailsText: String? = nil) {
      self.severity = severity
      self.code = code
      self.diagnostics = diagnostics
      self.details = detailsText.map { Details(text: $0) }
    }

    /// Diagnostics, else details.text.
    public var message: String? { diagnostics ?? details?.text }
  }

  public var issue: [Issue]

  public init(issue: [Issue]) { self.issue = issue }

  /// Issue codes, in order, for callers to match.
  public var codes: [String] { issue.compactMap(\.code) }

  /// `transient` and its children (C34).
  public static let transientCodes: Set<String> = [
    "transient", "lock-error", "no-store", "exception", "timeout", "incomplete", "throttled",
  ]

  public var isTransient: Bool { codes.contains { Self.transientCodes.contains($0) } }

  /// "error processing: diagnostics; warning informational: …" — verbatim diagnostics.
  public var summary: String {
    issue.map { i in
      var s = [i.severity, i.code].compactMap { $0 }.joined(separator: " ")
      if let m = i.message { s += s.isEmpty ? m : ": " + m }
      return s
    }.joined(separator: "; ")
  }

  /// Decodes an OperationOutcome from a response body; nil for anything else.
  public static func decode(_ data: Data) -> OperationOutcome? {
    struct Probe: Decodable { var resourceType: String? }
    guard let probe = try? JSONDecoder().decode(Probe.self, from: data),
      probe.resourceType == "OperationOutcome"
    else { return nil }
    return try? JSONDecoder().decode(OperationOutcome.self, from: data)
  }
}
