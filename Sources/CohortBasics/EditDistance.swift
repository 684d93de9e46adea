// Edit distance for "did you mean" hints (names, commands, resource types), in one place.

/// The closest candidate by edit distance, if it is close enough to be a plausible typo.
/// Case-insensitive; at most `maxDistance` edits (default: 2, or a third of the word's length); ties go to the earlier
/// candidate.
public func nearest(_ word: String, in candidates: [String], maxDistance: Int? = nil) -> String? {
  var best: (String, Int)?
  let limit = maxDistance ?? max(2, word.count / 3)
  for candidate in candidates {
    let distance = editDistance(word.lowercased(), candidate.lowercased())
    if distance <= limit, best == nil || distance < best!.1 {
      best = (candidate, distance)
    }
  }
  return best?.0
}

/// Levenshtein distance over Unicode scalars.
public func editDistance(_ a: String, _ b: String) -> Int {
  let a = Array(a.unicodeScalars)
  let b = Array(b.unicodeScalars)
  if a.isEmpty { return b.count }
  if b.isEmpty { return a.count }
  var previous = Array(0...b.count)
  var current = [Int](repeating: 0, count: b.count + 1)
  for i in 1...a.count {
    current[0] = i
    for j in 1...b.count {
      let cost = a[i - 1] == b[j - 1] ? 0 : 1
      current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
    }
    swap(&previous, &current)
  }
  return previous[b.count]
}
