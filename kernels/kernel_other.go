//go:build !amd64 || purego

package kernels

// cpuSpecs lists the kernels this CPU can run: the portable one.
var cpuSpecs = []*kernelSpec{genericSpec}
