// swift-tools-version:6.1
import PackageDescription

let package = Package(
  name: "cohort",
  platforms: [.macOS(.v14)],
  products: [
    .executable(name: "cohort", targets: ["cohort"]),
    .library(name: "BulkServer", targets: ["BulkServer"]),
    .library(name: "FHIRBulk", targets: ["FHIRBulk"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    // Tests only: TestClock drives token lifetimes and polling waits in virtual time.
    .package(url: "https://github.com/pointfreeco/swift-clocks", from: "1.1.1"),
  ],
  targets: [
    // System libraries.
    .systemLibrary(
      name: "CLibEdit", pkgConfig: "libedit", providers: [.apt(["libedit-dev"])]),
    .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
    // Signal and terminal glue that must live in one C translation unit.
    .target(name: "CCohortSupport", dependencies: ["CLibEdit"]),

    // NDJSON: streaming scan of NDJSON (plain or gzip). No knowledge of HTTP or SQLite.
    .target(
      name: "NDJSON",
      dependencies: [
        "CZlib",
        .product(name: "Crypto", package: "swift-crypto"),
      ]),

    // CohortBasics: tiny utilities every layer may use (FHIR instants, edit distance); imports nothing of ours.
    .target(name: "CohortBasics"),

    // CohortStore: SQLite (GRDB) registry, export jobs, files, watermarks, resource index.
    .target(
      name: "CohortStore",
      dependencies: [
        "CohortBasics",
        .product(name: "GRDB", package: "GRDB.swift")
      ]),

    // FHIRBulk: the Bulk Data protocol client. Knows nothing of cohorts or SQLite.
    .target(
      name: "FHIRBulk",
      dependencies: [
        "NDJSON", "CohortBasics",
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "_CryptoExtras", package: "swift-crypto"),
        .product(name: "Logging", package: "swift-log"),
      ]),

    // FHIRPath: a FHIRPath evaluator over JSON (the SQL-on-FHIR v2 subset and more). Knows nothing of cohorts.
    .target(name: "FHIRPath", dependencies: ["CohortBasics"]),

    // SQLOnFHIR: SQL-on-FHIR v2 ViewDefinitions run over resources. Knows nothing of cohorts or SQLite.
    .target(name: "SQLOnFHIR", dependencies: ["FHIRPath"]),

    // CohortKit: workflows (export, snapshots, diff, summary, history, notebooks, views).
    .target(
      name: "CohortKit",
      dependencies: [
        "CohortBasics", "CohortStore", "FHIRBulk", "NDJSON", "FHIRPath", "SQLOnFHIR",
        .product(name: "Crypto", package: "swift-crypto"),
      ]),

    // BulkServer: an embedded FHIR Bulk Data server with synthetic patients.
    // Never imports FHIRBulk (and FHIRBulk never imports it).
    .target(
      name: "BulkServer",
      dependencies: [
        "CZlib", "CohortBasics",
        .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "GRDB", package: "GRDB.swift"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "_CryptoExtras", package: "swift-crypto"),
        .product(name: "Logging", package: "swift-log"),
      ]),

    // CohortShell: line editor, command grammar, completion, output formats, script runner.
    .target(
      name: "CohortShell",
      dependencies: [
        "CohortKit", "CohortBasics", "CLibEdit", "CCohortSupport", "BulkServer",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),

    // The thin executable.
    .executableTarget(name: "cohort", dependencies: ["CohortShell"]),
    .executableTarget(name: "store-bench", dependencies: ["CohortStore"]),

    // Helpers shared by the test targets (the built binary, temporary folders, waiting, a Mutex box). Tests only.
    .target(name: "CohortTestSupport", path: "Tests/CohortTestSupport"),

    .testTarget(name: "CohortBasicsTests", dependencies: ["CohortBasics"]),
    .testTarget(name: "NDJSONTests", dependencies: ["NDJSON"]),
    .testTarget(name: "CohortStoreTests", dependencies: ["CohortStore"]),
    .testTarget(name: "FHIRPathTests", dependencies: ["FHIRPath"]),
    .testTarget(name: "SQLOnFHIRTests", dependencies: ["SQLOnFHIR", "FHIRPath"]),
    .testTarget(
      name: "FHIRBulkTests",
      dependencies: [
        "FHIRBulk", "BulkServer",
        .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "Clocks", package: "swift-clocks"),
      ]),
    .testTarget(name: "BulkServerTests", dependencies: [
      "BulkServer", "CohortTestSupport",
      .product(name: "AsyncHTTPClient", package: "async-http-client"),
      .product(name: "Clocks", package: "swift-clocks"),
    ]),
    .testTarget(name: "CohortKitTests", dependencies: ["CohortKit", "BulkServer", "CohortStore", "CohortTestSupport"]),
    .testTarget(name: "CohortShellTests", dependencies: ["CohortShell", "BulkServer", "FHIRBulk", "CohortTestSupport"]),
  ]
)
