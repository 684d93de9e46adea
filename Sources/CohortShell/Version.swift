/// The version and the git commit cohort was built from (stamped by `make release`/`make install`).
public enum CohortVersion {
  public static let string = BuildInfo.version
  /// The git commit of the build (nil for a plain `swift build`), for `--version` and run records.
  public static let commit: String? = BuildInfo.commit
  /// `cohort 0.1.0 (commit 1a2b3c4d5e6f)`, or `cohort 0.1.0` when the build was not stamped.
  public static var line: String {
    "cohort \(string)" + (commit.map { " (commit \($0.prefix(12)))" } ?? "")
  }
}
