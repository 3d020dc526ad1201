// Package textutil holds the small text helpers shared by the services and
// the CLI (one copy each).
package textutil

import "unicode/utf8"

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
