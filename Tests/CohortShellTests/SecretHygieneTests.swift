import CohortTestSupport
import BulkServer
import Foundation
import Testing

/// Issue "secret hygiene": no token, assertion or key material in the database, history file, log.ndjson,
/// run records, error text or --format json output (C12). The server runs in this test process so its request
/// log shows every token it issued and accepted; the client is the real binary.
@Suite(.serialized) struct SecretHygieneTests {
  @Test func smartTokensAndKeysNeverLeaveMemory() async throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let keygen = try Binary.run(["keygen", "--alg", "RS384", "--out", dir + "/key.pem"], cwd: dir)
    #expect(keygen.status == 0, "\(keygen.stderr)")
    try keygen.stdout.write(toFile: dir + "/jwks.json", atomically: true, encoding: .utf8)
    let attributes = try FileManager.default.attributesOfItem(atPath: dir + "/key.pem")
    #expect((attributes[.posixPermissions] as? Int) == 0o600)

    var configuration = BulkServerConfiguration()
    configuration.patients = 8
    configuration.tokenLifetime = 2
    configuration.auth = .smart(clients: try loadSmartClients(["app=" + dir + "/jwks.json"]))
    let server = try await BulkDataServer.start(configuration)
    defer { Task { await server.stop() } }

    try """
      server add s \(server.baseURL) --auth smart --client-id app --key key.pem
      server check s
      cohort add c --server s --group all-patients
      export c --format json
      history c --format json
      export c --type Nope
      """.write(toFile: dir + "/n.cohort", atomically: true, encoding: .utf8)
    let run = try Binary.run(
      ["--workspace", dir + "/ws", "--no-bail", "run", "n.cohort", "--record"], cwd: dir,
      environment: ["COHORT_HISTFILE": dir + "/history"])
    // The export under SMART really ran (else the scan below proves nothing): a committed snapshot in the JSON card.
    #expect(run.stdout.contains(#""field":"outcome","value":"ok""#), "\(run.stdout)\n\(run.stderr)")

    let log = await server.requestLog
    let tokens = Set(log.compactMap { $0.header("authorization") }.map { String($0.dropFirst("Bearer ".count)) })
    #expect(!tokens.isEmpty, "the export sent tokens")
    let pem = try String(contentsOfFile: dir + "/key.pem", encoding: .utf8)
    let keyBody = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
    var haystacks = [("stdout", run.stdout), ("stderr", run.stderr)]
    let enumerator = FileManager.default.enumerator(atPath: dir + "/ws")
    while let name = enumerator?.nextObject() as? String {
      let path = dir + "/ws/" + name
      if let data = FileManager.default.contents(atPath: path) {
        haystacks.append((name, String(decoding: data, as: UTF8.self)))
      }
    }
    for extra in ["n.run.json", "history"] {
      if let data = FileManager.default.contents(atPath: dir + "/" + extra) { haystacks.append((extra, String(decoding: data, as: UTF8.self))) }
    }
    #expect(haystacks.contains { $0.0.hasSuffix("log.ndjson") }, "log.ndjson was checked")
    #expect(haystacks.contains { $0.0 == "n.run.json" }, "the run record was checked")
    for (name, text) in haystacks {
      for token in tokens { #expect(!text.contains(token), "a token leaked into \(name)") }
      #expect(!text.contains(String(keyBody.prefix(40))), "key material leaked into \(name)")
      #expect(!text.contains("eyJ"), "something JWT-like leaked into \(name)")
    }
  }
}
