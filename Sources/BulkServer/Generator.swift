// Deterministic synthetic population: every patient's resources come from (seed, patientIndex) alone,
// so any patient can be regenerated on demand and nothing population-sized is ever held in memory.

/// One version of one resource, as stored and served.
struct StoredResource: Sendable {
  enum Body: Sendable {
    case parsed(JSON)
    /// Serialized JSON, parsed only when a filter or a change needs the content.
    case raw([UInt8])
  }
  var type: String
  var id: String
  var version: Int
  var lastUpdated: Int
  var body: Body

  init(type: String, id: String, version: Int, lastUpdated: Int, json: JSON) {
    self.type = type
    self.id = id
    self.version = version
    self.lastUpdated = lastUpdated
    self.body = .parsed(json)
  }

  init(type: String, id: String, version: Int, lastUpdated: Int, raw: [UInt8]) {
    self.type = type
    self.id = id
    self.version = version
    self.lastUpdated = lastUpdated
    self.body = .raw(raw)
  }

  var json: JSON {
    get {
      switch body {
      case .parsed(let j): return j
      case .raw(let bytes): return (try? JSON.parse(bytes)) ?? .object([])
      }
    }
    set { body = .parsed(newValue) }
  }

  /// The resource as one NDJSON line (without the newline).
  func bytes() -> [UInt8] {
    switch body {
    case .parsed(let j): return j.serialized()
    case .raw(let bytes): return bytes
    }
  }

  var key: String { type + "/" + id }

  /// The same resource with a new version number and lastUpdated (meta rewritten).
  func bumped(to time: Int, body: JSON? = nil) -> StoredResource {
    var copy = self
    copy.version += 1
    copy.lastUpdated = time
    copy.json = Generator.withMeta(body ?? json, version: copy.version, lastUpdated: time)
    return copy
  }
}

enum Codes {
  static let snomed = "http://snomed.info/sct"
  static let loinc = "http://loinc.org"
  static let rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
  static let cvx = "http://hl7.org/fhir/sid/cvx"
  static let diabetes = "44054006"
  static let hypertension = "38341003"
  static let conditionClinical = "http://terminology.hl7.org/CodeSystem/condition-clinical"
  static let allergyClinical = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
  static let observationCategory = "http://terminology.hl7.org/CodeSystem/observation-category"
}

struct Generator: Sendable {
  let seed: UInt64
  /// The simulated clock's start; every base resource is older than this.
  let startTime: Int
  static let organizationCount = 3
  static let practitionerCount = 10
  static let clinicalTypes = [
    "Patient", "Encounter", "Condition", "Observation", "MedicationRequest", "Procedure", "Immunization",
    "AllergyIntolerance",
  ]
  static let supportingTypes = ["Practitioner", "Organization"]
  static let allTypes = clinicalTypes + supportingTypes

  static func patientID(_ index: Int) -> String { "pat-\(index)" }
  static func patientIndex(of id: String) -> Int? {
    guard id.hasPrefix("pat-") else { return nil }
    return Int(id.dropFirst(4))
  }

  // MARK: building blocks

  static func withMeta(_ body: JSON, version: Int, lastUpdated: Int) -> JSON {
    let meta = JSON.object([("versionId", .string(String(version))), ("lastUpdated", .string(Instant.format(lastUpdated)))])
    return body.setting("meta", meta, after: "id")
  }

  static func make(_ type: String, _ id: String, _ lastUpdated: Int, _ fields: [(String, JSON)]) -> StoredResource {
    let meta = JSON.object([("versionId", .string("1")), ("lastUpdated", .string(Instant.format(lastUpdated)))])
    let body = JSON.object([("resourceType", .string(type)), ("id", .string(id)), ("meta", meta)] + fields)
    return StoredResource(type: type, id: id, version: 1, lastUpdated: lastUpdated, json: body)
  }

  static func concept(_ system: String, _ code: String, _ display: String) -> JSON {
    .object([
      ("coding", .array([.object([("system", .string(system)), ("code", .string(code)), ("display", .string(display))])])),
      ("text", .string(display)),
    ])
  }

  static func ref(_ reference: String) -> JSON { .object([("reference", .string(reference))]) }

  static func quantity(_ value: Double, _ unit: String, _ code: String) -> JSON {
    .object([
      ("value", .double((value * 10).rounded() / 10)), ("unit", .string(unit)),
      ("system", .string("http://unitsofmeasure.org")), ("code", .string(code)),
    ])
  }

  static func category(_ code: String, _ display: String) -> JSON {
    .array([concept(Codes.observationCategory, code, display)])
  }

  // MARK: supporting resources

  func supporting() -> [StoredResource] {
    let t = startTime - 400 * 86400
    var out: [StoredResource] = []
    let orgNames = ["Riverside Family Clinic", "Northgate Medical Center", "Lakeside Community Health"]
    for k in 0..<Generator.organizationCount {
      out.append(
        Generator.make(
          "Organization", "org-\(k)", t,
          [
            ("identifier", .array([.object([("system", .string("urn:cohort:org")), ("value", .string("ORG\(k)"))])])),
            ("active", .bool(true)),
            ("name", .string(orgNames[k % orgNames.count])),
          ]))
    }
    var rng = SplitMix(seed, 0xBEEF)
    for k in 0..<Generator.practitionerCount {
      let family = rng.pick(Names.family)
      let given = rng.pick(rng.chance(0.5) ? Names.female : Names.male)
      out.append(
        Generator.make(
          "Practitioner", "prac-\(k)", t,
          [
            ("identifier", .array([.object([("system", .string("http://hl7.org/fhir/sid/us-npi")), ("value", .string(String(1_000_000_000 + k * 7919)))])])),
            ("active", .bool(true)),
            ("name", .array([.object([("family", .string(family)), ("given", .array([.string(given)])), ("prefix", .array([.string("Dr.")]))])])),
          ]))
    }
    return out
  }

  // MARK: a patient

  struct Profile {
    var diabetes: Bool
    var hypertension: Bool
    var hyperlipidemia: Bool
    var asthma: Bool
    var allergy: Bool
    var female: Bool
    var birthYear: Int
  }

  func profile(_ index: Int) -> Profile {
    var rng = SplitMix(seed, UInt64(index), 1)
    return Profile(
      diabetes: rng.chance(0.3), hypertension: rng.chance(0.35), hyperlipidemia: rng.chance(0.2),
      asthma: rng.chance(0.1), allergy: rng.chance(0.3), female: rng.chance(0.5),
      birthYear: Int(Instant.format(startTime).prefix(4))! - rng.range(18, 90))
  }

  /// The base resources of patient `index`. With `createdAt`, the patient is new: every resource is
  /// stamped with that time and the clinical history lies in the year before it.
  func patient(_ index: Int, createdAt: Int? = nil) -> [StoredResource] {
    let p = profile(index)
    var rng = SplitMix(seed, UInt64(index), 2)
    let pid = Generator.patientID(index)
    let patientRef = "Patient/" + pid
    let now = createdAt ?? startTime
    let span = createdAt == nil ? 3 * 365 : 365
    let org = "Organization/org-\(index % Generator.organizationCount)"
    let gp = "Practitioner/prac-\(rng.below(Generator.practitionerCount))"
    // Encounter times, oldest first.
    let encounterCount = rng.range(1, 3)
    var times: [Int] = (0..<encounterCount).map { _ in now - rng.range(2, span) * 86400 + rng.range(8, 17) * 3600 }
    times.sort()
    func stamp(_ t: Int) -> Int { createdAt ?? min(t + 3600, startTime - 60) }

    var out: [StoredResource] = []
    let family = rng.pick(Names.family)
    let given = rng.pick(p.female ? Names.female : Names.male)
    let birth = "\(p.birthYear)-\(Instant.pad(rng.range(1, 12), 2))-\(Instant.pad(rng.range(1, 28), 2))"
    out.append(
      Generator.make(
        "Patient", pid, stamp(times[0] - 86400),
        [
          ("identifier", .array([.object([("system", .string("urn:cohort:mrn")), ("value", .string("MRN\(100_000 + index)"))])])),
          ("active", .bool(true)),
          ("name", .array([.object([("use", .string("official")), ("family", .string(family)), ("given", .array([.string(given)]))])])),
          ("telecom", .array([.object([("system", .string("phone")), ("value", .string("555-\(Instant.pad(rng.below(10000), 4))")), ("use", .string("home"))])])),
          ("gender", .string(p.female ? "female" : "male")),
          ("birthDate", .string(birth)),
          ("address", .array([.object([("line", .array([.string("\(rng.range(1, 999)) \(rng.pick(Names.streets))")])), ("city", .string(rng.pick(Names.cities))), ("state", .string("MA")), ("postalCode", .string("0\(rng.range(1000, 2799))"))])])),
          ("generalPractitioner", .array([Generator.ref(gp)])),
          ("managingOrganization", Generator.ref(org)),
        ]))

    for (e, t) in times.enumerated() {
      let encID = "enc-\(index)-\(e)"
      out.append(encounter(id: encID, patientRef: patientRef, practitioner: gp, org: org, at: t, lastUpdated: stamp(t)))
      out.append(contentsOf: vitals(idPrefix: "obs-\(index)-\(e)", patientRef: patientRef, encounterID: encID, at: t, lastUpdated: stamp(t), diabetic: p.diabetes, rng: &rng))
      if e == 0 {
        // Diagnoses recorded at the first visit.
        var c = 0
        func condition(_ code: String, _ display: String) {
          out.append(conditionResource(id: "cond-\(index)-\(c)", patientRef: patientRef, encounterID: encID, code: code, display: display, at: t, lastUpdated: stamp(t)))
          c += 1
        }
        if p.diabetes { condition(Codes.diabetes, "Diabetes mellitus type 2 (disorder)") }
        if p.hypertension { condition(Codes.hypertension, "Hypertensive disorder, systemic arterial (disorder)") }
        if p.hyperlipidemia { condition("55822004", "Hyperlipidemia (disorder)") }
        if p.asthma { condition("195967001", "Asthma (disorder)") }
        var m = 0
        func med(_ code: String, _ display: String) {
          out.append(medicationRequest(id: "med-\(index)-\(m)", patientRef: patientRef, encounterID: encID, practitioner: gp, code: code, display: display, at: t, lastUpdated: stamp(t)))
          m += 1
        }
        if p.diabetes { med("860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet") }
        if p.hypertension { med("314076", "lisinopril 10 MG Oral Tablet") }
        if p.hyperlipidemia { med("617310", "atorvastatin 20 MG Oral Tablet") }
        if p.asthma { med("745679", "200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler") }
        if p.allergy {
          let (code, display, category) = rng.pick([
            ("91936005", "Allergy to penicillin", "medication"), ("300913006", "Shellfish allergy", "food"),
            ("418689008", "Allergy to grass pollen", "environment"),
          ])
          out.append(
            Generator.make(
              "AllergyIntolerance", "alg-\(index)-0", stamp(t),
              [
                ("clinicalStatus", Generator.concept(Codes.allergyClinical, "active", "Active")),
                ("verificationStatus", Generator.concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed", "Confirmed")),
                ("type", .string("allergy")),
                ("category", .array([.string(category)])),
                ("code", Generator.concept(Codes.snomed, code, display)),
                ("patient", Generator.ref(patientRef)),
                ("recordedDate", .string(Instant.format(t))),
              ]))
        }
      }
      if rng.chance(0.6) {
        out.append(procedure(id: "proc-\(index)-\(e)", patientRef: patientRef, encounterID: encID, at: t, lastUpdated: stamp(t), diabetic: p.diabetes))
      }
    }
    if rng.chance(0.7) {
      let t = times[times.count - 1]
      let (code, display) = rng.chance(0.6)
        ? ("140", "Influenza, seasonal, injectable, preservative free")
        : ("208", "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 30 mcg/0.3mL dose")
      out.append(
        Generator.make(
          "Immunization", "imm-\(index)-0", stamp(t),
          [
            ("status", .string("completed")),
            ("vaccineCode", Generator.concept(Codes.cvx, code, display)),
            ("patient", Generator.ref(patientRef)),
            ("encounter", Generator.ref("Encounter/enc-\(index)-\(times.count - 1)")),
            ("occurrenceDateTime", .string(Instant.format(t))),
            ("primarySource", .bool(true)),
          ]))
    }
    return out
  }

  func encounter(id: String, patientRef: String, practitioner: String, org: String, at t: Int, lastUpdated: Int) -> StoredResource {
    Generator.make(
      "Encounter", id, lastUpdated,
      [
        ("status", .string("finished")),
        ("class", .object([("system", .string("http://terminology.hl7.org/CodeSystem/v3-ActCode")), ("code", .string("AMB")), ("display", .string("ambulatory"))])),
        ("type", .array([Generator.concept(Codes.snomed, "185349003", "Encounter for check up (procedure)")])),
        ("subject", Generator.ref(patientRef)),
        ("participant", .array([.object([("individual", Generator.ref(practitioner))])])),
        ("period", .object([("start", .string(Instant.format(t))), ("end", .string(Instant.format(t + 1800)))])),
        ("serviceProvider", Generator.ref(org)),
      ])
  }

  func conditionResource(id: String, patientRef: String, encounterID: String, code: String, display: String, at t: Int, lastUpdated: Int) -> StoredResource {
    Generator.make(
      "Condition", id, lastUpdated,
      [
        ("clinicalStatus", Generator.concept(Codes.conditionClinical, "active", "Active")),
        ("verificationStatus", Generator.concept("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed")),
        ("category", .array([Generator.concept("http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis", "Encounter Diagnosis")])),
        ("code", Generator.concept(Codes.snomed, code, display)),
        ("subject", Generator.ref(patientRef)),
        ("encounter", Generator.ref("Encounter/" + encounterID)),
        ("onsetDateTime", .string(Instant.format(t))),
        ("recordedDate", .string(Instant.format(t))),
      ])
  }

  func medicationRequest(id: String, patientRef: String, encounterID: String, practitioner: String, code: String, display: String, at t: Int, lastUpdated: Int) -> StoredResource {
    Generator.make(
      "MedicationRequest", id, lastUpdated,
      [
        ("status", .string("active")),
        ("intent", .string("order")),
        ("medicationCodeableConcept", Generator.concept(Codes.rxnorm, code, display)),
        ("subject", Generator.ref(patientRef)),
        ("encounter", Generator.ref("Encounter/" + encounterID)),
        ("authoredOn", .string(Instant.format(t))),
        ("requester", Generator.ref(practitioner)),
      ])
  }

  func procedure(id: String, patientRef: String, encounterID: String, at t: Int, lastUpdated: Int, diabetic: Bool) -> StoredResource {
    let (code, display) = diabetic ? ("401191002", "Foot examination (procedure)") : ("430193006", "Medication reconciliation (procedure)")
    return Generator.make(
      "Procedure", id, lastUpdated,
      [
        ("status", .string("completed")),
        ("code", Generator.concept(Codes.snomed, code, display)),
        ("subject", Generator.ref(patientRef)),
        ("encounter", Generator.ref("Encounter/" + encounterID)),
        ("performedDateTime", .string(Instant.format(t + 600))),
      ])
  }

  /// Blood pressure and weight at every visit; HbA1c for diabetics; glucose now and then.
  func vitals(idPrefix: String, patientRef: String, encounterID: String, at t: Int, lastUpdated: Int, diabetic: Bool, rng: inout SplitMix) -> [StoredResource] {
    var out: [StoredResource] = []
    func obs(_ n: Int, _ category: (String, String), _ code: String, _ display: String, _ value: [(String, JSON)]) {
      out.append(
        Generator.make(
          "Observation", "\(idPrefix)-\(n)", lastUpdated,
          [
            ("status", .string("final")),
            ("category", Generator.category(category.0, category.1)),
            ("code", Generator.concept(Codes.loinc, code, display)),
            ("subject", Generator.ref(patientRef)),
            ("encounter", Generator.ref("Encounter/" + encounterID)),
            ("effectiveDateTime", .string(Instant.format(t))),
            ("issued", .string(Instant.format(t + 900))),
          ] + value))
    }
    let vital = ("vital-signs", "Vital signs")
    let lab = ("laboratory", "Laboratory")
    let systolic = Double(rng.range(105, 165))
    let diastolic = Double(rng.range(65, 100))
    obs(
      0, vital, "85354-9", "Blood pressure panel with all children optional",
      [
        (
          "component",
          .array([
            .object([("code", Generator.concept(Codes.loinc, "8480-6", "Systolic blood pressure")), ("valueQuantity", Generator.quantity(systolic, "mm[Hg]", "mm[Hg]"))]),
            .object([("code", Generator.concept(Codes.loinc, "8462-4", "Diastolic blood pressure")), ("valueQuantity", Generator.quantity(diastolic, "mm[Hg]", "mm[Hg]"))]),
          ])
        )
      ])
    obs(1, vital, "29463-7", "Body weight", [("valueQuantity", Generator.quantity(Double(rng.range(500, 1200)) / 10, "kg", "kg"))])
    if diabetic || rng.chance(0.2) {
      let a1c = diabetic ? Double(rng.range(65, 95)) / 10 : Double(rng.range(48, 59)) / 10
      obs(2, lab, "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", [("valueQuantity", Generator.quantity(a1c, "%", "%"))])
    }
    if rng.chance(0.5) {
      let glucose = diabetic ? Double(rng.range(120, 220)) : Double(rng.range(70, 105))
      obs(3, lab, "2339-0", "Glucose [Mass/volume] in Blood", [("valueQuantity", Generator.quantity(glucose, "mg/dL", "mg/dL"))])
    }
    return out
  }
}

enum Names {
  static let family = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Hernandez",
    "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez",
    "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Nguyen", "Kim", "Patel",
  ]
  static let female = [
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah", "Karen", "Nancy",
    "Lisa", "Betty", "Margaret", "Sandra", "Ashley", "Emily", "Donna", "Michelle", "Carol", "Amanda", "Melissa",
  ]
  static let male = [
    "James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph", "Thomas", "Charles", "Daniel",
    "Matthew", "Anthony", "Mark", "Donald", "Steven", "Paul", "Andrew", "Joshua", "Kenneth", "Kevin", "Brian",
  ]
  static let streets = ["Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Elm St", "Pine Rd", "Harbor Way", "Hill St"]
  static let cities = ["Boston", "Worcester", "Springfield", "Cambridge", "Lowell", "Brockton", "Quincy", "Lynn"]
}
