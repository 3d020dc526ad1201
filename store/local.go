package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"tdb/internal/fsutil"
)

// Local is a Store on a local directory; a key "a/b/c" is the file
// ROOT/a/b/c. Put is atomic (temp file in the same directory, fsync, rename),
// so a reader never sees a half-written blob and a crash leaves either the old
// blob or the new one.
//
// Unlike a real blob store a directory cannot hold both "a" and "a/b"; a Put
// that would need that fails with an error naming the key.
type Local struct {
	root string // absolute, cleaned
}

// NewLocal returns a store rooted at dir. The directory is created on the
// first Put, not here, so that opening a store for reading has no side
// effects; it is an error if dir exists and is not a directory.
func NewLocal(dir string) (*Local, error) {
	if dir == "" {
		return nil, errors.New("store: empty local directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("store: local directory %q: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("store: local store root %s is not a directory", abs)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("store: local store root: %w", err)
	}
	return &Local{root: abs}, nil
}

// Root returns the store's absolute root directory.
func (s *Local) Root() string { return s.root }

// String returns the store's file:// URL.
func (s *Local) String() string { return "file://" + filepath.ToSlash(s.root) }

func (s *Local) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

func (s *Local) wrap(op, key string, err error) error {
	return fmt.Errorf("store %s: %s %q: %w", s, op, key, err)
}

// notFound maps "no such file" (and "a path component is a file") to ErrNotFound.
func (s *Local) notFound(op, key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("store %s: %s %q: %w", s, op, key, ErrNotFound)
	}
	return s.wrap(op, key, err)
}

// Put writes r to key atomically.
func (s *Local) Put(ctx context.Context, key string, r io.Reader) error {
	if err := checkKey(ctx, key); err != nil {
		return s.wrap("put", key, err)
	}
	dst := s.path(key)
	dir := filepath.Dir(dst)
	f, err := createTemp(dir)
	if err != nil {
		return s.wrap("put", key, err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := io.Copy(f, ctxReader{ctx, r}); err != nil {
		return s.wrap("put", key, fmt.Errorf("write: %w", err))
	}
	// CreateTemp makes 0600 files; blobs are ordinary shared data.
	if err := f.Chmod(0o644); err != nil {
		return s.wrap("put", key, err)
	}
	if err := f.Sync(); err != nil {
		return s.wrap("put", key, fmt.Errorf("fsync: %w", err))
	}
	if err := f.Close(); err != nil {
		return s.wrap("put", key, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		if fi, serr := os.Stat(dst); serr == nil && fi.IsDir() {
			err = fmt.Errorf("a directory of other keys (%q/...) is in the way: %w", key, err)
		}
		return s.wrap("put", key, err)
	}
	done = true
	// Make the rename itself durable. Failing here is reported: the blob is
	// visible but might not survive a crash.
	if err := fsutil.SyncDir(dir); err != nil {
		return s.wrap("put", key, fmt.Errorf("fsync directory: %w", err))
	}
	return nil
}

// createTemp makes dir and a temp file in it. A concurrent Delete may remove
// an emptied parent directory between the two steps, so retry a few times.
func createTemp(dir string) (*os.File, error) {
	var lastErr error
	for range 5 {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			if errors.Is(err, syscall.ENOTDIR) {
				return nil, fmt.Errorf("a parent of the key is itself a blob: %w", err)
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			lastErr = err
			continue
		}
		f, err := os.CreateTemp(dir, tempMarker+"*")
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		lastErr = err
	}
	return nil, lastErr
}

// open opens key's file, mapping directories and missing files to ErrNotFound.
func (s *Local) open(op, key string) (*os.File, int64, error) {
	if err := ValidateKey(key); err != nil {
		return nil, 0, s.wrap(op, key, err)
	}
	f, err := os.Open(s.path(key))
	if err != nil {
		return nil, 0, s.notFound(op, key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, s.wrap(op, key, err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, 0, fmt.Errorf("store %s: %s %q: %w (it is a directory of other keys)", s, op, key, ErrNotFound)
	}
	return f, fi.Size(), nil
}

// Get opens key for reading.
func (s *Local) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, s.wrap("get", key, err)
	}
	f, _, err := s.open("get", key)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// GetRange reads length bytes of key from offset (length < 0: to the end).
// A range reaching past the end is cut there; an offset past the end is an error.
func (s *Local) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, s.wrap("get range", key, err)
	}
	if err := checkRange(offset, length); err != nil {
		return nil, s.wrap("get range", key, err)
	}
	f, size, err := s.open("get range", key)
	if err != nil {
		return nil, err
	}
	n, err := rangeLen(size, offset, length)
	if err != nil {
		f.Close()
		return nil, s.wrap("get range", key, err)
	}
	return sectionReadCloser{io.NewSectionReader(f, offset, n), f}, nil
}

type sectionReadCloser struct {
	*io.SectionReader
	io.Closer
}

// Size returns key's length in bytes.
func (s *Local) Size(ctx context.Context, key string) (int64, error) {
	if err := checkKey(ctx, key); err != nil {
		return 0, s.wrap("size", key, err)
	}
	fi, err := os.Stat(s.path(key))
	if err != nil {
		return 0, s.notFound("size", key, err)
	}
	if fi.IsDir() {
		return 0, fmt.Errorf("store %s: size %q: %w (it is a directory of other keys)", s, key, ErrNotFound)
	}
	return fi.Size(), nil
}

// List returns every key starting with prefix, sorted, walking only the
// directories that can hold such keys.
func (s *Local) List(ctx context.Context, prefix string) ([]string, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, fmt.Errorf("store %s: list %q: %w", s, prefix, err)
	}
	base := s.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		base = s.path(prefix[:i])
	}
	var keys []string
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == base && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) {
				return fs.SkipAll // nothing stored under the prefix yet
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == base {
			if !d.IsDir() {
				return fs.SkipAll // the prefix's directory part names a blob
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), tempMarker) {
			removeIfStale(p) // a Put in progress, or one that crashed
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			// Descend only where keys with the prefix can be.
			dirKey := key + "/"
			if strings.HasPrefix(dirKey, prefix) || strings.HasPrefix(prefix, dirKey) {
				return nil
			}
			return fs.SkipDir
		}
		if strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: list %q: %w", s, prefix, err)
	}
	slices.Sort(keys)
	return keys, nil
}

// Delete removes key and then any directories it leaves empty, so that a
// later Put of a key named like one of those directories can succeed.
func (s *Local) Delete(ctx context.Context, key string) error {
	if err := checkKey(ctx, key); err != nil {
		return s.wrap("delete", key, err)
	}
	p := s.path(key)
	if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
		return nil // not a blob; nothing to delete
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		return s.wrap("delete", key, err)
	}
	for dir := filepath.Dir(p); dir != s.root && strings.HasPrefix(dir, s.root); dir = filepath.Dir(dir) {
		if temps, err := filepath.Glob(filepath.Join(dir, tempMarker+"*")); err == nil {
			for _, t := range temps {
				removeIfStale(t)
			}
		}
		if os.Remove(dir) != nil {
			break // not empty (or already gone): stop climbing
		}
	}
	return nil
}

// StaleTempAge is how long a temporary file may go unwritten before the
// store takes it for the leftover of a Put whose process died (kill -9,
// power loss): a live Put writes it continuously, then renames it.
const StaleTempAge = time.Hour

// removeIfStale removes the temporary file p if nothing has written to it
// for StaleTempAge. List and Delete call it, so a crashed writer's file
// neither stays in a dataset's folder for good nor keeps its folder from
// being removed.
func removeIfStale(p string) {
	if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > StaleTempAge {
		os.Remove(p)
	}
}

// ctxReader stops a copy when its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
