//go:build !(amd64 || arm64) || purego

package kernels

// cpuPaths lists the paths this CPU runs: the portable one.
var cpuPaths = []*path{genericPath}
