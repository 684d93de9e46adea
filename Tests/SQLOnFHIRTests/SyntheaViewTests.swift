import FHIRPath
import Foundation
import SQLOnFHIR
import Testing

/// The example views (Notebooks/views) over the 100-patient Synthea set (../shared/data), checked
/// against values computed independently with JSONSerialization. Skipped when the data is absent.
@Suite("Example views over Synthea")
struct SyntheaViewTests {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
  static let tarball: String? = {
    ["../shared/data/synthea100-r4-bundles.tar.gz", "../../shared/data/synthea100-r4-bundles.tar.gz"]
      .map { root.appendingPathComponent($0).standardizedFileURL.path }
      .first { FileManager.default.fileExists(atPath: $0) }
  }()

  static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"

  static func view(_ name: String) throws -> ViewDefinition {
    try ViewDefinition(jsonText: Data(contentsOf: root.appendingPathComponent("Notebooks/views/\(name).json")))
  }

  /// Every resource of every Bundle, as JSON text lines.
  static func resources() throws -> [Data] {
    guard let tarball else { return [] }
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("synthea-views-" + UUID().uuidString)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let tar = Process()
    tar.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    tar.arguments = ["tar", "-xzf", tarball, "-C", dir.path]
    try tar.run()
    tar.waitUntilExit()
    try #require(tar.terminationStatus == 0)
    var files: [URL] = []
    if let e = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil) {
      for case let u as URL in e where u.pathExtension == "json" { files.append(u) }
    }
    var out: [Data] = []
    for file in files.sorted(by: { $0.path < $1.path }) {
      let bundle = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any]
      for entry in bundle?["entry"] as? [[String: Any]] ?? [] {
        guard let r = entry["resource"] else { continue }
        out.append(try JSONSerialization.data(withJSONObject: r))
      }
    }
    return out
  }

  static func rows(_ view: ViewDefinition, _ lines: [Data]) throws -> [String] {
    var out: [String] = []
    for line in lines {
      let rows = try line.withUnsafeBytes { raw in try view.rows(forJSON: raw.bindMemory(to: UInt8.self)) }
      for r in rows { out.append(r.map(cell).joined(separator: "|")) }
    }
    return out.sorted()
  }

  static func cell(_ v: JSON) -> String {
    if let d = v.doubleValue { return String(d) }
    switch v {
    case .null: return ""
    case .string(let s): return s
    case .bool(let b): return String(b)
    default: return v.jsonText
    }
  }

  static func key(_ ref: Any?) -> String {
    let r = (ref as? [String: Any])?["reference"] as? String ?? ""
    if r.hasPrefix("urn:uuid:") { return String(r.dropFirst(9)) }
    return r.hasPrefix("Patient/") ? String(r.dropFirst(8)) : ""
  }

  static func coded(_ concept: Any?, _ system: String, _ code: String) -> Bool {
    (((concept as? [String: Any])?["coding"] as? [[String: Any]]) ?? []).contains {
      $0["system"] as? String == system && $0["code"] as? String == code
    }
  }

  static func num(_ q: Any?) -> String {
    ((q as? [String: Any])?["value"] as? NSNumber).map { String($0.doubleValue) } ?? ""
  }

  @Test(
    "patient demographics, HbA1c, blood pressure and active conditions match an independent computation",
    .enabled(if: tarball != nil || isCI, "synthea100-r4-bundles.tar.gz not found in ../shared/data: skipped"))
  func examples() throws {
    // Under CI=true the data must be there (CI has ../shared/data): missing fails instead of skipping.
    try #require(Self.tarball != nil, "CI=true but synthea100-r4-bundles.tar.gz is not in ../shared/data")
    let lines = try Self.resources()
    let objects = try lines.map { try #require(JSONSerialization.jsonObject(with: $0) as? [String: Any]) }
    func of(_ t: String) -> [[String: Any]] { objects.filter { $0["resourceType"] as? String == t } }
    try #require(of("Patient").count >= 100)

    let demo = of("Patient").map { p -> String in
      let official = ((p["name"] as? [[String: Any]]) ?? []).first { $0["use"] as? String == "official" }
      return [
        p["id"] as? String ?? "", p["gender"] as? String ?? "", p["birthDate"] as? String ?? "",
        String((p["deceasedBoolean"] as? Bool) == true),
        official?["family"] as? String ?? "",
        official.map { (($0["given"] as? [String]) ?? []).joined(separator: " ") } ?? "",
      ].joined(separator: "|")
    }.sorted()
    #expect(try Self.rows(Self.view("patient_demographics"), lines) == demo)

    let loinc = "http://loinc.org"
    let a1c = of("Observation").filter { Self.coded($0["code"], loinc, "4548-4") }.map { o -> String in
      let q = o["valueQuantity"] as? [String: Any]
      return [o["id"] as? String ?? "", Self.key(o["subject"]), o["effectiveDateTime"] as? String ?? "", Self.num(q), q?["unit"] as? String ?? ""]
        .joined(separator: "|")
    }.sorted()
    #expect(!a1c.isEmpty)
    #expect(try Self.rows(Self.view("hba1c"), lines) == a1c)

    let bp = of("Observation").compactMap { o -> String? in
      let comps = (o["component"] as? [[String: Any]]) ?? []
      guard comps.contains(where: { Self.coded($0["code"], loinc, "8480-6") }) else { return nil }
      let v = { (c: String) in Self.num(comps.first { Self.coded($0["code"], loinc, c) }?["valueQuantity"]) }
      return [o["id"] as? String ?? "", Self.key(o["subject"]), o["effectiveDateTime"] as? String ?? "", v("8480-6"), v("8462-4")]
        .joined(separator: "|")
    }.sorted()
    #expect(!bp.isEmpty)
    #expect(try Self.rows(Self.view("blood_pressure"), lines) == bp)

    let conditions = of("Condition").flatMap { c -> [String] in
      let status = ((c["clinicalStatus"] as? [String: Any])?["coding"] as? [[String: Any]]) ?? []
      guard status.contains(where: { $0["code"] as? String == "active" }) else { return [] }
      return (((c["code"] as? [String: Any])?["coding"] as? [[String: Any]]) ?? [])
        .filter { $0["system"] as? String == "http://snomed.info/sct" }
        .map {
          [c["id"] as? String ?? "", Self.key(c["subject"]), c["onsetDateTime"] as? String ?? "", $0["code"] as? String ?? "", $0["display"] as? String ?? ""]
            .joined(separator: "|")
        }
    }.sorted()
    #expect(!conditions.isEmpty)
    #expect(try Self.rows(Self.view("active_conditions"), lines) == conditions)

    // Throughput (informational; no timed assertion): the HbA1c view over every resource.
    let view = try Self.view("hba1c")
    let clock = ContinuousClock()
    var produced = 0
    let elapsed = try clock.measure {
      for line in lines {
        produced += try line.withUnsafeBytes { try view.rows(forJSON: $0.bindMemory(to: UInt8.self)) }.count
      }
    }
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    print("hba1c view over \(lines.count) Synthea resources: \(produced) rows, \(Int(Double(lines.count) / max(seconds, 1e-9))) resources/s (this build)")
  }
}
