/// Splits command lines shell-style. The REPL, `-c`, scripts, stdin and `run FILE` all use this.
///
/// - whitespace separates words; `;` separates commands on one line;
/// - `'…'` is literal; `"…"` allows `\"`, `\\` and `\$` escapes and `$var` expansion;
/// - `\` outside quotes escapes the next character; a trailing `\` continues the line;
/// - `#` at the start of a word starts a comment that runs to the end of the line;
/// - `$name` and `${name}` expand script variables (outside single quotes).
public enum Grammar {
  public enum Result: Equatable, Sendable {
    /// Complete commands, each a list of words (empty commands are dropped).
    case commands([[String]])
    /// The input ends inside a quote or with a trailing backslash: read another line.
    case incomplete
  }

  public enum LexError: Error, CustomStringConvertible, Equatable {
    case undefinedVariable(String)
    case badVariable
    public var description: String {
      switch self {
      case .undefinedVariable(let name): return "undefined variable '$\(name)' (set it with `set \(name) VALUE`)"
      case .badVariable: return "'${' without a closing '}'"
      }
    }
  }

  /// `variables: nil` leaves `$name` unexpanded (to find command boundaries before variables are known).
  public static func split(_ rawInput: String, variables: [String: String]? = [:]) throws -> Result {
    let input = rawInput.contains("\r\n") ? rawInput.replacingOccurrences(of: "\r\n", with: "\n") : rawInput
    var commands: [[String]] = []
    var words: [String] = []
    var word = ""
    var inWord = false
    let chars = Array(input)
    var i = 0

    func endWord() {
      if inWord { words.append(word) }
      word = ""
      inWord = false
    }
    func endCommand() {
      endWord()
      if !words.isEmpty { commands.append(words) }
      words = []
    }
    func expand(at index: inout Int) throws {
      // chars[index] == "$"
      var j = index + 1
      var name = ""
      if j < chars.count, chars[j] == "{" {
        j += 1
        while j < chars.count, chars[j] != "}" { name.append(chars[j]); j += 1 }
        guard j < chars.count else { throw LexError.badVariable }
        j += 1
      } else {
        while j < chars.count, chars[j].isLetter || chars[j].isNumber || chars[j] == "_" {
          name.append(chars[j])
          j += 1
        }
      }
      if name.isEmpty || variables == nil {
        word += String(chars[index..<(name.isEmpty ? index + 1 : j)])
        inWord = true
        index = name.isEmpty ? index + 1 : j
        return
      }
      guard let value = variables?[name] else { throw LexError.undefinedVariable(name) }
      word += value
      inWord = true
      index = j
    }

    while i < chars.count {
      let c = chars[i]
      switch c {
      case " ", "\t", "\r":
        endWord()
        i += 1
      case "\n":
        endCommand()
        i += 1
      case ";":
        endCommand()
        i += 1
      case "#" where !inWord:
        while i < chars.count, chars[i] != "\n" { i += 1 }
      case "\\":
        if i + 1 >= chars.count { return .incomplete }
        if chars[i + 1] == "\n" {
          i += 2
          continue
        }
        word.append(chars[i + 1])
        inWord = true
        i += 2
      case "'":
        inWord = true
        i += 1
        var closed = false
        while i < chars.count {
          if chars[i] == "'" {
            closed = true
            i += 1
            break
          }
          word.append(chars[i])
          i += 1
        }
        if !closed { return .incomplete }
      case "\"":
        inWord = true
        i += 1
        var closed = false
        while i < chars.count {
          let d = chars[i]
          if d == "\"" {
            closed = true
            i += 1
            break
          }
          if d == "\\", i + 1 < chars.count, ["\"", "\\", "$", "\n"].contains(chars[i + 1]) {
            if chars[i + 1] != "\n" { word.append(chars[i + 1]) }
            i += 2
            continue
          }
          if d == "$" {
            try expand(at: &i)
            continue
          }
          word.append(d)
          i += 1
        }
        if !closed { return .incomplete }
      case "$":
        try expand(at: &i)
      default:
        word.append(c)
        inWord = true
        i += 1
      }
    }
    endCommand()
    return .commands(commands)
  }

  /// Cuts complete input into the raw text of each command (at `;` and newlines outside quotes and
  /// comments), so that each command's `$variables` are expanded just before it runs.
  public static func segments(_ input: String) -> [String] {
    var out: [String] = []
    var current = ""
    var quote: Character?
    var escaped = false
    var inComment = false
    var wordStarted = false
    for c in input {
      if inComment {
        if c == "\n" {
          inComment = false
          out.append(current)
          current = ""
          wordStarted = false
        }
        continue
      }
      if escaped {
        current.append(c)
        escaped = false
        continue
      }
      if let q = quote {
        current.append(c)
        if c == "\\" && q == "\"" {
          escaped = true
        } else if c == q {
          quote = nil
        }
        continue
      }
      switch c {
      case "\\":
        current.append(c)
        escaped = true
        wordStarted = true
      case "'", "\"":
        current.append(c)
        quote = c
        wordStarted = true
      case "#" where !wordStarted:
        inComment = true
      case ";", "\n":
        out.append(current)
        current = ""
        wordStarted = false
      case " ", "\t", "\r":
        current.append(c)
        wordStarted = false
      default:
        current.append(c)
        wordStarted = true
      }
    }
    out.append(current)
    return out.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
  }

  /// Quotes a word so that `split` gives it back unchanged (for echo and records).
  public static func quote(_ word: String) -> String {
    if !word.isEmpty,
      word.allSatisfy({ $0.isLetter || $0.isNumber || "-_./:=,+@%".contains($0) })
    {
      return word
    }
    return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
  }
}
