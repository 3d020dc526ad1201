package hub

import (
	"strconv"
	"strings"
)

// parseContentRange reads "bytes START-END/SIZE" or "bytes */SIZE"; size is
// -1 when given as "*".
func parseContentRange(v string) (start, end, size int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	size = -1
	if sz != "*" {
		n, err := strconv.ParseInt(sz, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, 0, false
		}
		size = n
	}
	if rng == "*" {
		return -1, -1, size, size >= 0
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start || size >= 0 && end >= size {
		return 0, 0, 0, false
	}
	return start, end, size, true
}

func sizeString(total int64) string {
	if total < 0 {
		return "unknown"
	}
	return strconv.FormatInt(total, 10)
}
