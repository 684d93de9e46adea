// The version of cohort, and the fallback build stamp for builds that are not made by `make`.
//
// `make release`/`make install` write BuildStamp.generated.swift (ignored by git) with the git commit and
// compile with -DCOHORT_STAMPED, which swaps this fallback out. A plain `swift build` uses it as is:
// the version is known, the commit is not (it is never guessed from a checkout at run time).
#if !COHORT_STAMPED
  enum BuildInfo {
    static let version = "0.1.0"
    static let commit: String? = nil
  }
#endif
