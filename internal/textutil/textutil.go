// Package textutil holds the small text helpers shared by the services and
// the CLI (one copy each).
package textutil

import (
	"strings"
	"unicode/utf8"
)

// Truncate shortens s to at most n bytes, cut at a rune boundary, and marks
// the cut with "…" (error reasons in NATS terms and status lines).
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// List splits a comma-separated flag value into its trimmed, non-empty
// entries ("a, b,,c" → a b c; "" → none).
func List(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
