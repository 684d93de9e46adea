import CohortTestSupport
import Foundation
import Testing

/// The layers of docs/architecture.md, checked on the sources: which target may import which. `make build` and
/// `make test` also pass `--explicit-target-dependency-import-check=error`, so an import that Package.swift does not
/// declare fails the build; this test fails when a declared or undeclared import crosses a forbidden line.
@Suite struct LayeringTests {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  /// Target → targets of this package it must never import.
  static let forbidden: [String: Set<String>] = [
    "CohortBasics": [
      "NDJSON", "FHIRBulk", "CohortStore", "CohortKit", "CohortShell", "BulkServer", "FHIRPath", "SQLOnFHIR",
    ],
    "NDJSON": ["FHIRBulk", "CohortStore", "CohortKit", "CohortShell", "BulkServer", "FHIRPath", "SQLOnFHIR"],
    "FHIRPath": ["NDJSON", "FHIRBulk", "CohortStore", "CohortKit", "CohortShell", "BulkServer", "SQLOnFHIR"],
    "SQLOnFHIR": ["NDJSON", "FHIRBulk", "CohortStore", "CohortKit", "CohortShell", "BulkServer"],
    "FHIRBulk": ["BulkServer", "CohortStore", "CohortKit", "CohortShell"],
    "BulkServer": ["FHIRBulk", "CohortStore", "CohortKit", "CohortShell"],
    "CohortStore": ["FHIRBulk", "NDJSON", "CohortKit", "CohortShell", "BulkServer"],
    "CohortKit": ["BulkServer", "CohortShell"],
    "CohortShell": ["CohortStore", "FHIRBulk", "NDJSON", "FHIRPath", "SQLOnFHIR"],
    "cohort": ["CohortKit", "CohortStore", "FHIRBulk", "NDJSON", "BulkServer"],
  ]

  /// (file name, imported module) per Swift file of a target.
  static func imports(of target: String) throws -> [(String, String)] {
    let folder = root.appendingPathComponent("Sources/" + target).path
    var out: [(String, String)] = []
    let enumerator = FileManager.default.enumerator(atPath: folder)
    while let name = enumerator?.nextObject() as? String {
      guard name.hasSuffix(".swift") else { continue }
      let text = try String(contentsOfFile: folder + "/" + name, encoding: .utf8)
      for line in text.split(separator: "\n") {
        let words = line.split(separator: " ").map(String.init)
        guard let i = words.firstIndex(of: "import"), i + 1 < words.count,
          words[..<i].allSatisfy({ $0.hasPrefix("@") || $0 == "public" || $0 == "internal" })
        else { continue }
        out.append(((name as NSString).lastPathComponent, words[i + 1]))
      }
    }
    return out
  }

  @Test("no target imports across a forbidden line (FHIRBulk ↔ BulkServer, libraries → CohortKit, CohortKit → BulkServer, the shell → the engines)")
  func importsFollowTheLayers() throws {
    for (target, banned) in Self.forbidden {
      let found = try Self.imports(of: target)
      #expect(!found.isEmpty, "no Swift files found for \(target)")
      for (file, module) in found where banned.contains(module) {
        Issue.record("Sources/\(target)/\(file) imports \(module), which \(target) must not use (docs/architecture.md)")
      }
    }
  }

  @Test("the shell reaches the store only through CohortKit's typed API (no CohortStore import, no store SPI)")
  func shellNeverHoldsTheStore() throws {
    // CohortKit hands out the `Store` only under `@_spi(Store)` (tests use it); the shell must not opt in.
    let folder = Self.root.appendingPathComponent("Sources/CohortShell").path
    for name in try FileManager.default.contentsOfDirectory(atPath: folder) where name.hasSuffix(".swift") {
      let text = try String(contentsOfFile: folder + "/" + name, encoding: .utf8)
      #expect(!text.contains("@_spi(Store)"), "Sources/CohortShell/\(name) opts into CohortKit's store SPI")
      #expect(!text.contains("import CohortStore"), "Sources/CohortShell/\(name) imports CohortStore")
    }
  }

  @Test("Package.swift declares no forbidden dependency either")
  func packageDeclaresNoForbiddenDependency() throws {
    let manifest = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
    for (target, banned) in Self.forbidden {
      let declaration = #"\.(target|executableTarget)\(\s*name: ""# + target + "\""
      let start = try #require(manifest.range(of: declaration, options: .regularExpression), "no target \(target) in Package.swift")
      // The target's declaration runs to the next `.target(`/`.executableTarget(`/`.testTarget(`.
      let rest = manifest[start.upperBound...]
      let end = [".target(", ".executableTarget(", ".testTarget(", "]\n)"].compactMap { rest.range(of: $0)?.lowerBound }.min()
      let body = rest[..<(end ?? rest.endIndex)]
      for module in banned where body.contains("\"\(module)\"") {
        Issue.record("Package.swift: \(target) declares a dependency on \(module), which the layers forbid")
      }
    }
  }
}
