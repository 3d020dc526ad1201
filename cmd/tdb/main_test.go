package main

import (
	"os"
	"testing"

	"tdb/kernels"
)

// TestMain installs the fast GEMMs as main does, so the commands run in
// tests exactly as in the binary.
func TestMain(m *testing.M) {
	kernels.Install()
	os.Exit(m.Run())
}
