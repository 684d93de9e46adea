import FHIRPath
