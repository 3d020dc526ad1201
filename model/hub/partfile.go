package hub

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"tdb/internal/fsutil"
)

// partFile is a download in progress: NAME.part beside the final NAME. It
// keeps what earlier attempts received (so the next one asks for the rest
// with a Range request) and the sha256 of those bytes, and only becomes
// NAME once commit has verified it: a file under its final name is always
// complete.
type partFile struct {
	final, path string
	f           *os.File // nil once closed
	h           hash.Hash
	size        int64 // bytes in the part, all of them hashed
}

// openPart opens (or creates) final+".part" and hashes what it already
// holds, leaving the offset at its end.
func openPart(final string) (*partFile, error) {
	p := &partFile{final: final, path: final + ".part", h: sha256.New()}
	f, err := os.OpenFile(p.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p.path, err)
	}
	p.f = f
	if p.size, err = io.Copy(p.h, f); err != nil {
		p.close()
		return nil, fmt.Errorf("read %s: %w", p.path, err)
	}
	return p, nil
}

// restart empties the part (the server sends the whole file again).
func (p *partFile) restart() error {
	if err := p.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate %s: %w", p.path, err)
	}
	if _, err := p.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("seek %s: %w", p.path, err)
	}
	p.size = 0
	p.h.Reset()
	return nil
}

// Write appends to the part; a failure is a writeError (the disk, not the
// network: never retried).
func (p *partFile) Write(b []byte) (int, error) {
	n, err := p.f.Write(b)
	p.h.Write(b[:n])
	p.size += int64(n)
	if err != nil {
		return n, &writeError{fmt.Errorf("write %s: %w", p.path, err)}
	}
	return n, nil
}

// close closes the file, keeping the part for the next attempt; an empty
// part holds nothing to resume and is removed (a refused request leaves no
// trace in the cache).
func (p *partFile) close() {
	if p.f == nil {
		return
	}
	p.f.Close()
	p.f = nil
	if p.size == 0 {
		_ = os.Remove(p.path)
	}
}

// discard closes and deletes the part.
func (p *partFile) discard() error {
	p.close()
	if err := os.Remove(p.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// verify compares the part with the size (-1: unknown) and sha256 (hex,
// "": unknown) the server announced; why says what differs.
func (p *partFile) verify(size int64, sha string) (why string) {
	if size >= 0 && p.size != size {
		return fmt.Sprintf("%d bytes instead of %d", p.size, size)
	}
	if sha != "" {
		if got := hex.EncodeToString(p.h.Sum(nil)); got != sha {
			return fmt.Sprintf("sha256 is %s but the server says %s", got, sha)
		}
	}
	return ""
}

// commit makes the verified part durable and renames it to its final name.
// check, when not nil, inspects the closed file first (its error is
// returned as it is, the part deleted).
func (p *partFile) commit(check func(path string) error) error {
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", p.path, err)
	}
	err := p.f.Close()
	p.f = nil
	if err != nil {
		return fmt.Errorf("close %s: %w", p.path, err)
	}
	if check != nil {
		if err := check(p.path); err != nil {
			_ = os.Remove(p.path)
			return err
		}
	}
	if err := os.Rename(p.path, p.final); err != nil {
		return fmt.Errorf("rename %s: %w", p.path, err)
	}
	_ = fsutil.SyncDir(filepath.Dir(p.final)) // a failure costs durability on a crash only
	return nil
}
