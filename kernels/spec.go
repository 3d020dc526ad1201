package kernels

//go:generate go run gen_sgemm.go

// defaultSpec is the fastest micro-kernel this CPU runs.
func defaultSpec() *kernelSpec { return cpuSpecs[0] }
