package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// TestNegativeIntFlagsAreUsageErrors gives -5 to every integer flag of every
// command: each must be a usage error (exit 2) naming the flag, never a panic
// or a run.
func TestNegativeIntFlagsAreUsageErrors(t *testing.T) {
	intFlag := regexp.MustCompile(`(?m)^\s+-(\S+) int\b`)
	checked := 0
	for name := range commands {
		var help bytes.Buffer
		args := append(strings.Fields(name), "-h")
		if code := run(t.Context(), args, &help, &help); code != 0 {
			t.Fatalf("tdb %s -h: exit %d\n%s", name, code, help.String())
		}
		for _, m := range intFlag.FindAllStringSubmatch(help.String(), -1) {
			var out, errOut bytes.Buffer
			code := run(t.Context(), append(strings.Fields(name), "-"+m[1], "-5"), &out, &errOut)
			if code != 2 || !strings.Contains(errOut.String(), "-"+m[1]+" must not be negative") {
				t.Errorf("tdb %s -%s -5: exit %d, stderr %q; want exit 2 naming the flag", name, m[1], code, errOut.String())
			}
			checked++
		}
	}
	if checked < 10 {
		t.Fatalf("only %d integer flags found in the commands' help; the help format changed?", checked)
	}
}
