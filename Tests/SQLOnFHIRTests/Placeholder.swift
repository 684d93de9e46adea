import SQLOnFHIR
