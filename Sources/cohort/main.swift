import CohortShell
await CohortMain.main()
