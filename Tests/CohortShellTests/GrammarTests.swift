import CohortTestSupport
import Testing

@testable import CohortShell

@Suite struct GrammarTests {
  func words(_ line: String, _ variables: [String: String] = [:]) throws -> [[String]] {
    guard case .commands(let c) = try Grammar.split(line, variables: variables) else {
      Issue.record("incomplete: \(line)")
      return []
    }
    return c
  }

  @Test func splitsOnWhitespaceAndSemicolons() throws {
    #expect(try words("server  list ; cohort list") == [["server", "list"], ["cohort", "list"]])
    #expect(try words("   ") == [])
  }

  @Test func quotesAndEscapes() throws {
    #expect(try words(#"cohort add x --note 'it''s fine'"#) == [["cohort", "add", "x", "--note", "its fine"]])
    #expect(try words(#"set a "say \"hi\" \\ \$x""#) == [["set", "a", #"say "hi" \ $x"#]])
    #expect(try words(#"set a it\'s\ ok"#) == [["set", "a", "it's ok"]])
    #expect(try words("set a ''") == [["set", "a", ""]])
    #expect(try words("set a 'x;y#z'") == [["set", "a", "x;y#z"]])
  }

  @Test func commentsRunToTheEndOfTheLine() throws {
    #expect(try words("server list # all of them\n# a whole line\ncohort list") == [["server", "list"], ["cohort", "list"]])
    #expect(try words("set a b#c") == [["set", "a", "b#c"]])
  }

  @Test func continuationOnTrailingBackslashOrOpenQuote() throws {
    #expect(try Grammar.split("cohort add x \\") == .incomplete)
    #expect(try Grammar.split("cohort add 'x") == .incomplete)
    #expect(try Grammar.split("cohort add \"x") == .incomplete)
    #expect(try words("cohort add x \\\n  --server s") == [["cohort", "add", "x", "--server", "s"]])
    #expect(try words("set a 'line one\nline two'") == [["set", "a", "line one\nline two"]])
  }

  @Test func variablesExpandOutsideSingleQuotes() throws {
    let vars = ["since": "2024-01-01T00:00:00Z", "c": "dm"]
    #expect(try words("export $c --since $since", vars) == [["export", "dm", "--since", "2024-01-01T00:00:00Z"]])
    #expect(try words("set x \"${c}-2\" '$c'", vars) == [["set", "x", "dm-2", "$c"]])
    #expect(throws: Grammar.LexError.undefinedVariable("nope")) { try Grammar.split("show $nope") }
  }

  @Test(arguments: ["plain", "with space", "it's", "", "a;b", "#x", "$y", "tab\there"])
  func quoteRoundTrips(_ word: String) throws {
    #expect(try words("x " + Grammar.quote(word)) == [["x", word]])
  }
}
