import Testing
@testable import CohortShell
@Test func placeholder() {}
