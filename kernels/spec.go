package kernels

// defaultSpec is the fastest micro-kernel this CPU runs.
func defaultSpec() *kernelSpec { return cpuSpecs[0] }
