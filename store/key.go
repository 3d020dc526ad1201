package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrInvalidKey is returned (wrapped) for a key or prefix that no backend
// may store: empty, absolute, with "." or ".." segments, and so on.
var ErrInvalidKey = errors.New("store: invalid key")

// MaxKeyLen is the longest key accepted, Azure Blob's limit on blob names
// (less room for a container prefix is not checked here).
const MaxKeyLen = 1024

// tempMarker starts the names of the local store's temporary files. Keys may
// not have a segment starting with it, so List can skip half-written files.
const tempMarker = ".tdb-put-"

// checkKey is what a backend checks before it touches key: the key is
// valid and the context still live.
func checkKey(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	return ctx.Err()
}

// ValidateKey reports whether key is a well-formed blob key: non-empty valid
// UTF-8, at most MaxKeyLen bytes, slash-separated segments that are neither
// empty, ".", "..", nor start with the local store's temp-file marker, and no
// backslash or NUL. The same rules hold for every backend so that a dataset
// written locally can be copied to Azure unchanged, and so no key can escape
// the local store's root directory.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	if err := checkChars("key", key); err != nil {
		return err
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return fmt.Errorf("%w: key %q has an empty segment (// or trailing /)", ErrInvalidKey, key)
		case seg == "." || seg == "..":
			return fmt.Errorf("%w: key %q has a %q segment", ErrInvalidKey, key, seg)
		case strings.HasPrefix(seg, tempMarker):
			return fmt.Errorf("%w: key %q has a segment starting with the reserved %q", ErrInvalidKey, key, tempMarker)
		}
	}
	return nil
}

// checkChars holds the rules keys and prefixes share: length, UTF-8, not
// absolute, no backslash or NUL. what names s in the error.
func checkChars(what, s string) error {
	if len(s) > MaxKeyLen {
		return fmt.Errorf("%w: %s of %d bytes is longer than %d", ErrInvalidKey, what, len(s), MaxKeyLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s %q is not valid UTF-8", ErrInvalidKey, what, s)
	}
	if strings.HasPrefix(s, "/") {
		return fmt.Errorf("%w: %s %q is absolute (starts with /)", ErrInvalidKey, what, s)
	}
	if strings.ContainsAny(s, "\\\x00") {
		return fmt.Errorf("%w: %s %q contains a backslash or NUL", ErrInvalidKey, what, s)
	}
	return nil
}

// validatePrefix checks a List prefix. A prefix is a plain string prefix (not
// a directory), so "datasets/de" matches "datasets/demo/x"; it may be empty or
// end with "/", but it must not be able to climb out of the store.
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := checkChars("prefix", prefix); err != nil {
		return err
	}
	segs := strings.Split(prefix, "/")
	for i, seg := range segs {
		last := i == len(segs)-1
		if seg == "" && !last {
			return fmt.Errorf("%w: prefix %q has an empty segment", ErrInvalidKey, prefix)
		}
		// The last segment is incomplete, so "." or "a/.." there could only
		// match keys that ValidateKey rejects; still refuse ".." anywhere.
		if seg == ".." || (seg == "." && !last) {
			return fmt.Errorf("%w: prefix %q has a %q segment", ErrInvalidKey, prefix, seg)
		}
	}
	return nil
}

// checkRange validates GetRange arguments shared by all backends.
func checkRange(offset, length int64) error {
	if offset < 0 {
		return fmt.Errorf("store: negative range offset %d", offset)
	}
	return nil
}

// rangeLen returns how many bytes GetRange yields for a blob of size bytes:
// a range reaching past the end is cut at the end, an offset past the end is
// an error (an offset equal to size gives an empty read).
func rangeLen(size, offset, length int64) (int64, error) {
	if offset > size {
		return 0, fmt.Errorf("store: range offset %d is past the end of a %d-byte blob", offset, size)
	}
	n := size - offset
	if length >= 0 && length < n {
		n = length
	}
	return n, nil
}
