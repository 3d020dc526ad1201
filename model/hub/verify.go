package hub

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// sha256FromETag returns the lower-case hex sha256 an ETag carries, or "" if
// it carries none. The hub's ETag/X-Linked-Etag for an LFS file is the
// sha256 of its content (quoted, sometimes weak: W/"..."); for a small git
// file it is the 40-hex git blob id, which is not a content hash we check.
func sha256FromETag(etag string) string {
	e := strings.TrimSpace(etag)
	e = strings.TrimPrefix(e, "W/")
	e = strings.Trim(e, `"`)
	if len(e) != 64 {
		return ""
	}
	for _, c := range e {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return ""
		}
	}
	return strings.ToLower(e)
}

// maxConfigSize bounds how much of a config.json is read for the sanity check.
const maxConfigSize = 16 << 20

// checkContent catches the usual wrong payloads (a mirror's HTML error page
// served with status 200, a git-LFS pointer instead of the weights) even when
// the server gave no sha256 to check against.
func checkContent(name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	switch name {
	case configFile:
		data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
		if err != nil {
			return err
		}
		if len(data) > maxConfigSize {
			return fmt.Errorf("is larger than %d bytes, not a model config", maxConfigSize)
		}
		var obj map[string]any
		if err := json.Unmarshal(data, &obj); err != nil {
			return fmt.Errorf("is not a JSON object (%v); starts with %q", err, prefix(data, 40))
		}
	case weightsFile:
		var hdr [9]byte
		if _, err := io.ReadFull(f, hdr[:]); err != nil {
			return fmt.Errorf("is %d bytes, too short for safetensors", fi.Size())
		}
		n := binary.LittleEndian.Uint64(hdr[:8])
		if n == 0 || n > uint64(fi.Size()-8) || hdr[8] != '{' {
			return fmt.Errorf("is not a safetensors file (header length %d in a %d-byte file); starts with %q", n, fi.Size(), prefix(hdr[:], 9))
		}
	}
	return nil
}

func prefix(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}
