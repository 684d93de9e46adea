import CohortTestSupport
import BulkServer
import CohortKit
import Foundation
import Testing

/// The workflows behind `server check`, `keygen` and `summary PATH` (Sources/CohortKit/Servers.swift).
@Suite("Server diagnostics, keys, file counts")
struct ServersTests {
  @Test("C5/C11: server check reads the CapabilityStatement into typed fields (levels, types, _typeFilter params)")
  func serverCheckIsTyped() async throws {
    try await withFixture { f in
      let report = try await ServerDiagnostics.check(server: try f.store.server(named: f.serverName), factory: f.factory)
      #expect(report.server == f.serverName && report.auth == "none")
      #expect(!report.software.isEmpty)
      #expect(report.fhirVersion?.hasPrefix("4.0") == true)
      #expect(report.exportLevels.contains { $0.lowercased().contains("group") }, "\(report.exportLevels)")
      #expect(report.resourceTypes.contains("Patient") && report.resourceTypes == report.resourceTypes.sorted())
      #expect(report.smart == nil && report.tokenAvailable == nil)
    }
  }

  @Test("summary PATH counts every *.ndjson[.gz] under a folder per type; a bad file fails naming the file")
  func countFiles() async throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("servers-tests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try #"{"resourceType":"Patient","id":"1"}\#n{"resourceType":"Patient","id":"2"}\#n"#
      .write(toFile: dir + "/Patient.ndjson", atomically: true, encoding: .utf8)
    try #"{"resourceType":"Observation","id":"7"}\#n{"id":"x"}\#n"#
      .write(toFile: dir + "/sub/Observation.ndjson", atomically: true, encoding: .utf8)
    try "not counted".write(toFile: dir + "/notes.txt", atomically: true, encoding: .utf8)
    let counts = try await Snapshots.countByType(path: dir)
    #expect(counts == ["Patient": 2, "Observation": 1, "(no resourceType)": 1])
    #expect(try await Snapshots.countByType(path: dir + "/Patient.ndjson") == ["Patient": 2])

    try Data([0x1f, 0x8b, 0x08, 0x00, 0x01]).write(to: URL(fileURLWithPath: dir + "/sub/Broken.ndjson.gz"))
    await #expect {
      _ = try await Snapshots.countByType(path: dir)
    } throws: { error in
      String(describing: error).contains("Broken.ndjson.gz")
    }
    await #expect(throws: (any Error).self) { _ = try await Snapshots.countByType(path: dir + "/missing") }
  }

  @Test("keygen writes a 0600 key once (never overwrites) and returns its public JWKS")
  func keygen() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let key = try Keys.generate(algorithm: "ES384", path: dir + "/k.pem")
    #expect(key.algorithm == "ES384" && !key.kid.isEmpty && key.jwks.contains("\"keys\""))
    #expect(!key.jwks.contains("\"d\""), "the JWKS must hold the public key only")
    let mode = try FileManager.default.attributesOfItem(atPath: dir + "/k.pem")[.posixPermissions] as? Int
    #expect(mode == 0o600)
    #expect(Keys.permissionWarning(path: dir + "/k.pem") == nil)
    #expect(throws: (any Error).self) { _ = try Keys.generate(algorithm: "ES384", path: dir + "/k.pem") }
    #expect(throws: (any Error).self) { _ = try Keys.generate(algorithm: "HS256", path: dir + "/other.pem") }
  }
}
