// FHIRPath evaluator (work in progress).
