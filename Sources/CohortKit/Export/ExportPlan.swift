import CohortBasics
import CohortStore
import FHIRBulk
import Foundation

/// What a cohort is: the request a fresh full export sends. Its watermarks belong to it: each type's watermark
/// is keyed by the type's *request shape* (its `_typeFilter` queries and the `_elements`), so a watermark is never
/// used for a request it did not come from.
public struct CohortDefinition: Sendable, Equatable {
  /// Resource types; empty means every type the server exports for the Group.
  public var types: [String]
  public var typeFilters: [String]
  public var elements: [String]

  public init(types: [String], typeFilters: [String], elements: [String]) {
    self.types = types
    self.typeFilters = typeFilters
    self.elements = elements
  }

  public init(_ cohort: CohortRecord) {
    self.init(types: cohort.types, typeFilters: cohort.typeFilters, elements: cohort.elements)
  }

  /// The key of the watermark that covers every type of an all-types cohort.
  public static let allTypes = "*"

  /// The `_typeFilter` queries of one type (`Type?…`).
  public func filters(for type: String) -> [String] {
    typeFilters.filter { Self.filterType($0) == type }
  }

  /// The request shape of one type (or of `*`, every type).
  public func shape(of type: String) -> String {
    let filters = type == Self.allTypes ? typeFilters : filters(for: type)
    var parts: [String] = []
    if !filters.isEmpty { parts.append("typeFilter=" + filters.sorted().joined(separator: "&&")) }
    if !elements.isEmpty { parts.append("elements=" + elements.sorted().joined(separator: ",")) }
    return parts.joined(separator: ";")
  }

  /// True when `type` is part of the definition.
  public func contains(_ type: String) -> Bool { types.isEmpty || types.contains(type) }

  /// `Observation?code=…` → `Observation`.
  public static func filterType(_ filter: String) -> String {
    String(filter.prefix { $0 != "?" })
  }
}

/// One server job an export will run.
public struct PlannedJob: Sendable, Equatable {
  public var role: JobRole
  public var parameters: ExportParameters
  public init(role: JobRole, parameters: ExportParameters) {
    self.role = role
    self.parameters = parameters
  }
}

/// The plan of one `export`: its jobs (one per `_since` group of types), and what it may change.
public struct ExportPlan: Sendable, Equatable {
  /// `full`, `incremental` or `reconcile`.
  public var kind: String
  /// A side export moves no watermark and changes no state.
  public var side: Bool
  /// Why it is a side export (one line for the user), or what a reconcile does.
  public var reason: String?
  public var jobs: [PlannedJob]
  /// Lines to tell the user before anything is sent (types pulled in full, …).
  public var notes: [String]

  /// Builds the plan for `options` against the cohort's definition and its current watermarks.
  /// Never uses one type's watermark for another: types are grouped by their own watermark (same shape), each
  /// group is one kick-off with that `_since`, and types without one are pulled in full.
  public static func make(
    cohort: String, definition: CohortDefinition, options: ExportOptions, watermarks: [WatermarkRecord]
  ) throws -> ExportPlan {
    if options.incremental && options.since != nil {
      throw ExportError.usage("give either --incremental or --since, not both")
    }
    if options.full && (options.incremental || options.since != nil) {
      throw ExportError.usage("--full re-baselines; it cannot be combined with --incremental or --since")
    }
    if options.reconcile && (options.incremental || options.since != nil || options.full) {
      throw ExportError.usage("--reconcile lists the ids the server has; it cannot be combined with --full, --incremental or --since")
    }
    if options.reconcile && (!options.typeFilters.isEmpty || !options.elements.isEmpty) {
      throw ExportError.usage("--reconcile uses the cohort's own definition; drop --type-filter and --elements")
    }
    let types = options.types.isEmpty ? definition.types : options.types
    var notes: [String] = []

    // Side exports: a request that is not the cohort's definition (or a subset of its types).
    var side = false
    var reason: String?
    let outside = types.filter { !definition.contains($0) }
    if !options.typeFilters.isEmpty {
      side = true
      reason = "--type-filter is not part of cohort \(cohort)'s definition"
    } else if !options.elements.isEmpty {
      side = true
      reason = "--elements is not part of cohort \(cohort)'s definition"
    } else if !outside.isEmpty {
      side = true
      reason = "\(outside.joined(separator: ", ")) \(outside.count == 1 ? "is" : "are") not among cohort \(cohort)'s types"
    }

    // Filters and elements sent: the definition's for the requested types; a side export's own where given.
    func filters(for types: [String]) -> [String] {
      let optionTypes = Set(options.typeFilters.map(CohortDefinition.filterType))
      let own = definition.typeFilters.filter { f in
        let t = CohortDefinition.filterType(f)
        return (types.isEmpty || types.contains(t)) && !optionTypes.contains(t)
      }
      let extra = options.typeFilters.filter { types.isEmpty || types.contains(CohortDefinition.filterType($0)) }
      return own + extra
    }
    let elements = options.elements.isEmpty ? definition.elements : options.elements
    func parameters(types: [String], since: String?) -> ExportParameters {
      ExportParameters(
        types: types, since: since, until: options.until, typeFilters: filters(for: types), elements: elements,
        outputFormat: options.outputFormat)
    }

    // The watermark a type can use: its own of the same shape, else the all-types one.
    let byKey = Dictionary(
      watermarks.map { ($0.resourceType, $0) }, uniquingKeysWith: { a, _ in a })
    func watermark(of type: String) -> String? {
      if let own = byKey[type], own.shape == definition.shape(of: type) { return own.transactionTime }
      if let all = byKey[CohortDefinition.allTypes], all.shape == definition.shape(of: CohortDefinition.allTypes) {
        return all.transactionTime
      }
      return nil
    }

    if options.reconcile {
      var p = parameters(types: types, since: nil)
      p.elements = ["id"]
      return ExportPlan(
        kind: "reconcile", side: false,
        reason: "lists the ids the server has now (_elements=id) and removes from the state what it no longer has",
        jobs: [PlannedJob(role: .reconcile, parameters: p)], notes: notes)
    }

    if let since = options.since {
      // An explicit _since leaves no gap only when it is not later than every requested type's watermark.
      if !side {
        let keys = types.isEmpty ? [CohortDefinition.allTypes] : types
        let gaps = keys.filter { t in
          guard let mark = watermark(of: t) else { return true }
          return instantOrder(since, mark) == .orderedDescending
        }
        if !gaps.isEmpty {
          side = true
          let names = gaps.map { $0 == CohortDefinition.allTypes ? "every type" : $0 }.joined(separator: ", ")
          reason = "--since \(since) is later than the watermark of \(names) (or there is none), so changes in between would be missing"
        }
      }
      return ExportPlan(
        kind: "incremental", side: side, reason: reason,
        jobs: [PlannedJob(role: .main, parameters: parameters(types: types, since: since))], notes: notes)
    }

    if !options.incremental {
      return ExportPlan(
        kind: "full", side: side, reason: reason,
        jobs: [PlannedJob(role: .main, parameters: parameters(types: types, since: nil))], notes: notes)
    }

    // --incremental.
    if types.isEmpty {
      // Every type: one kick-off without _type from the oldest watermark — only when an all-types export set one.
      guard watermark(of: CohortDefinition.allTypes) != nil else {
        notes.append("cohort \(cohort) has no watermark covering every type yet: this export is full")
        return ExportPlan(
          kind: "full", side: side, reason: reason,
          jobs: [PlannedJob(role: .main, parameters: parameters(types: [], since: nil))], notes: notes)
      }
      let marks = watermarks.filter { $0.shape == definition.shape(of: $0.resourceType) }.map(\.transactionTime)
      let since = marks.min { instantOrder($0, $1) == .orderedAscending }
      return ExportPlan(
        kind: "incremental", side: side, reason: reason,
        jobs: [PlannedJob(role: .main, parameters: parameters(types: [], since: since))], notes: notes)
    }
    var groups: [String?: [String]] = [:]
    for type in types { groups[watermark(of: type), default: []].append(type) }
    if let missing = groups[nil] {
      notes.append("no watermark for \(missing.joined(separator: ", ")): pulled in full")
    }
    let ordered = groups.keys.sorted { a, b in
      switch (a, b) {
      case (nil, _): return b != nil
      case (_, nil): return false
      case (let x?, let y?): return instantOrder(x, y) == .orderedAscending
      }
    }
    let jobs = ordered.map { since in
      PlannedJob(role: .main, parameters: parameters(types: groups[since]!, since: since))
    }
    if jobs.count > 1 {
      notes.append(
        "\(jobs.count) kick-offs: "
          + jobs.map { "\($0.parameters.types.joined(separator: ",")) since \($0.parameters.since ?? "the beginning")" }
          .joined(separator: "; "))
    }
    let kind = jobs.allSatisfy { $0.parameters.since == nil } ? "full" : "incremental"
    return ExportPlan(kind: kind, side: side, reason: reason, jobs: jobs, notes: notes)
  }
}
