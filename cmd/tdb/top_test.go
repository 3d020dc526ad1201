package main

import "testing"

// TestPrintableEscapesControlBytes: corpus text printed by tdb top cannot
// drive the terminal (an ESC sequence would recolour or move the cursor).
func TestPrintableEscapesControlBytes(t *testing.T) {
	for in, want := range map[string]string{
		"a\nb\tc":            "a⏎b c",
		"\x1b[31mred\x1b[0m": `\x1b[31mred\x1b[0m`,
		"bell\a nul\x00":     `bell\a nul\x00`,
		"\u0085next line":    `\u0085next line`,
		"Paris, ünïcødé ✓":   "Paris, ünïcødé ✓",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}
