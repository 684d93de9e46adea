import Testing
@testable import CohortKit
@Test func placeholder() {}
