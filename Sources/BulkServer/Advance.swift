import GRDB

extension Dataset {
  /// Moves the clock by `days` and changes the data like a clinic would. Deterministic for
  /// (seed, day number, state, rate). Runs in one write transaction.
  ///
  /// Each day brings visits (an Encounter and its vitals, ≈ 4 resources), updates and deletions in the ratio
  /// 4 : 2 : 1 — by default a tenth, a twentieth and a fortieth of the patients, which changes ≈ 25 % of the
  /// resources in 7 days. `rate` (0 < rate ≤ 1) scales them so that the whole advance changes about that fraction
  /// of the resources (estimated from the first patients' resource counts); the daily new patient and the
  /// diabetes joiner and leaver are kept.
  func advance(_ db: Database, days: Int, seed: UInt64, rate: Double? = nil) throws -> AdvanceReport {
    let oldClock = try Dataset.metaInt(db, "clock") ?? generator.startTime
    var dayNumber = try Dataset.metaInt(db, "day") ?? 0
    var patientCount = try Dataset.metaInt(db, "patientCount") ?? basePatients
    var scaled: (visits: Int, updates: Int, deletes: Int)?
    if let rate {
      let sample = min(patientCount, 50)
      var perPatient = 13.0
      if sample > 0 {
        var total = 0
        for i in 0..<sample { total += try base(db, patient: i).count }
        perPatient = Double(total) / Double(sample)
      }
      // Resources per "unit": 4 visits × ≈ 4 resources + 2 updates + 1 deletion.
      let unit = rate * perPatient * Double(patientCount) / Double(days) / 19
      scaled = (Int((4 * unit).rounded()), Int((2 * unit).rounded()), Int(unit.rounded()))
    }

    // Before-state of every touched patient (membership and resource keys), for the report.
    var before: [Int: (keys: Set<String>, groups: Set<GroupKind>)] = [:]
    var touched = Set<Int>()
    func remember(_ i: Int, _ state: MergedPatient) {
      if before[i] == nil {
        before[i] = (Set(state.live.map(\.key)), Set(GroupKind.allCases.filter { $0.contains(state) }))
      }
      touched.insert(i)
    }
    var newKeys = Set<String>()  // created during this advance

    for d in 0..<days {
      dayNumber += 1
      let dayStart = oldClock + d * 86400
      var rng = SplitMix(seed, 0xADD, UInt64(dayNumber))
      var event = 0
      func nextTime() -> Int {
        event += 1
        return dayStart + 3600 + (event * 37) % 79_200
      }
      let n = max(patientCount, 1)
      func pickPatients(_ count: Int) -> [Int] {
        var set = Set<Int>()
        var tries = 0
        while set.count < min(count, patientCount) && tries < count * 20 {
          set.insert(rng.below(n))
          tries += 1
        }
        return set.sorted()
      }
      func state(_ i: Int) throws -> MergedPatient {
        let s = try patientState(db, patient: i, at: Int.max)
        remember(i, s)
        return s
      }
      let visitCount = scaled?.visits ?? max(2, patientCount / 10)
      let updateCount = scaled?.updates ?? max(1, patientCount / 20)
      let deleteCount = scaled?.deletes ?? max(1, patientCount / 40)

      // Deletions: an Observation entered in error.
      for i in pickPatients(deleteCount) {
        let s = try state(i)
        guard s.exists else { continue }
        let candidates = s.live.filter { $0.type == "Observation" && !newKeys.contains($0.key) }
        guard !candidates.isEmpty else { continue }
        let victim = candidates[rng.below(candidates.count)]
        try Dataset.insertDeletion(db, patient: i, victim, at: nextTime())
      }
      // Updates: a new phone number, or an amended Observation.
      for i in pickPatients(updateCount) {
        let s = try state(i)
        guard let patient = s.live.first(where: { $0.type == "Patient" }) else { continue }
        let observations = s.live.filter { $0.type == "Observation" && $0.json["valueQuantity"] != nil }
        if rng.chance(0.5), !observations.isEmpty {
          let o = observations[rng.below(observations.count)]
          var q = o.json["valueQuantity"] ?? .null
          if let v = q["value"], case .number(let text) = v, let value = Double(text) {
            q = q.setting("value", .double(((value * 1.05) * 10).rounded() / 10))
          }
          let body = o.json.setting("status", .string("amended")).setting("valueQuantity", q)
          try Dataset.insert(db, patient: i, o.bumped(to: nextTime(), body: body))
        } else {
          let phone = "555-\(String(rng.below(10000)).leftPad(4))"
          let telecom = JSON.array([.object([("system", .string("phone")), ("value", .string(phone)), ("use", .string("mobile"))])])
          try Dataset.insert(db, patient: i, patient.bumped(to: nextTime(), body: patient.json.setting("telecom", telecom)))
        }
      }
      // Visits: an Encounter with vitals (and labs).
      for i in pickPatients(visitCount) {
        let s = try state(i)
        guard let patient = s.live.first(where: { $0.type == "Patient" }) else { continue }
        let t = nextTime()
        let ref = "Patient/" + patient.id
        let encID = "enc-\(i)-d\(dayNumber)"
        let practitioner = patient.json["generalPractitioner"]?.arrayValue?.first?["reference"]?.stringValue ?? "Practitioner/prac-0"
        let org = patient.json["managingOrganization"]?["reference"]?.stringValue ?? "Organization/org-0"
        var resources = [generator.encounter(id: encID, patientRef: ref, practitioner: practitioner, org: org, at: t - 1800, lastUpdated: t)]
        resources += generator.vitals(
          idPrefix: "obs-\(i)-d\(dayNumber)", patientRef: ref, encounterID: encID, at: t - 1800, lastUpdated: t,
          diabetic: GroupKind.diabetes.contains(s), rng: &rng)
        for r in resources {
          try Dataset.insert(db, patient: i, r)
          newKeys.insert(r.key)
        }
      }
      // One new diagnosis of diabetes (joins diabetes-patients), one resolved (leaves it).
      var joinCandidates: [Int] = []
      var leaveCandidates: [(Int, StoredResource)] = []
      for i in pickPatients(min(patientCount, 8)) {
        let s = try patientState(db, patient: i, at: Int.max)
        guard s.exists else { continue }
        if GroupKind.diabetes.contains(s) {
          if let c = s.live.first(where: {
            $0.type == "Condition" && Filters.codeMatches($0.json["code"], [Codes.diabetes])
              && $0.json["clinicalStatus"]?["coding"]?.arrayValue?.first?["code"]?.stringValue == "active"
          }) {
            leaveCandidates.append((i, c))
          }
        } else {
          joinCandidates.append(i)
        }
      }
      if let i = joinCandidates.first {
        let s = try state(i)
        if let patient = s.live.first(where: { $0.type == "Patient" }) {
          let t = nextTime()
          let ref = "Patient/" + patient.id
          let enc = s.live.last(where: { $0.type == "Encounter" })?.id ?? "enc-\(i)-0"
          let cond = generator.conditionResource(
            id: "cond-\(i)-d\(dayNumber)", patientRef: ref, encounterID: enc, code: Codes.diabetes,
            display: "Diabetes mellitus type 2 (disorder)", at: t, lastUpdated: t)
          let med = generator.medicationRequest(
            id: "med-\(i)-d\(dayNumber)", patientRef: ref, encounterID: enc, practitioner: "Practitioner/prac-0",
            code: "860975", display: "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet", at: t, lastUpdated: t)
          for r in [cond, med] {
            try Dataset.insert(db, patient: i, r)
            newKeys.insert(r.key)
          }
        }
      }
      if let (i, c) = leaveCandidates.first(where: { !touched.contains($0.0) }) ?? leaveCandidates.first {
        _ = try state(i)
        let t = nextTime()
        let body = c.json
          .setting("clinicalStatus", Generator.concept(Codes.conditionClinical, "resolved", "Resolved"))
          .setting("abatementDateTime", .string(Instant.format(t)), after: "onsetDateTime")
        try Dataset.insert(db, patient: i, c.bumped(to: t, body: body))
      }
      // A new patient joins the practice.
      let newIndex = patientCount
      let t = nextTime()
      for r in generator.patient(newIndex, createdAt: t) {
        try Dataset.insert(db, patient: newIndex, r)
        newKeys.insert(r.key)
      }
      before[newIndex] = ([], [])
      touched.insert(newIndex)
      patientCount += 1
    }

    let newClock = oldClock + days * 86400
    try Dataset.setMeta(db, "clock", String(newClock))
    try Dataset.setMeta(db, "day", String(dayNumber))
    try Dataset.setMeta(db, "patientCount", String(patientCount))

    var report = AdvanceReport(clock: Instant.format(newClock), days: days)
    for i in touched.sorted() {
      let after = try patientState(db, patient: i, at: Int.max)
      let prior = before[i] ?? ([], [])
      let afterKeys = Dictionary(after.live.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
      for (key, r) in afterKeys {
        if !prior.keys.contains(key) {
          report.added[r.type, default: []].append(r.id)
        } else if r.lastUpdated > oldClock {
          report.updated[r.type, default: []].append(r.id)
        }
      }
      for d in after.deleted where d.at > oldClock && prior.keys.contains("\(d.type)/\(d.id)") {
        report.deleted[d.type, default: []].append(d.id)
      }
      let groupsAfter = Set(GroupKind.allCases.filter { $0.contains(after) })
      let pid = after.patientID ?? Generator.patientID(i)
      for g in groupsAfter.subtracting(prior.groups) { report.joined[g.rawValue, default: []].append(pid) }
      for g in prior.groups.subtracting(groupsAfter) { report.left[g.rawValue, default: []].append(pid) }
    }
    func sortAll(_ d: inout [String: [String]]) { for k in d.keys { d[k]!.sort() } }
    sortAll(&report.added)
    sortAll(&report.updated)
    sortAll(&report.deleted)
    sortAll(&report.joined)
    sortAll(&report.left)
    return report
  }
}
