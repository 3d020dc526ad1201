package corpus

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"tdb/store"
)

// Opener resolves a corpus URL (such as azblob://account/container/dir/*.jsonl)
// into the store that holds it and the key (or key glob) inside that store.
type Opener func(ctx context.Context, url string) (st store.Store, key string, err error)

// source is where corpus files live: the local filesystem or a store.
type source interface {
	// glob returns the sorted names matching pattern; a pattern without glob
	// characters must name an existing file.
	glob(ctx context.Context, pattern string) ([]string, error)
	size(ctx context.Context, name string) (int64, error)
	// open reads n bytes from off (n < 0: to the end).
	open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error)
	// readerAt gives random access for Parquet footers and column chunks.
	readerAt(ctx context.Context, name string) (readerAtSeekCloser, error)
	// where names a file for errors and manifests.
	where(name string) string
}

type readerAtSeekCloser interface {
	io.ReaderAt
	io.ReadSeeker
	io.Closer
}

const globMeta = `*?[\`

// localSource reads the local filesystem.
type localSource struct{}

func (localSource) glob(_ context.Context, pattern string) ([]string, error) {
	pattern = strings.TrimPrefix(pattern, "file://")
	if !strings.ContainsAny(pattern, globMeta) {
		st, err := os.Stat(pattern)
		if err != nil {
			return nil, fmt.Errorf("corpus file %s: %w", pattern, err)
		}
		if st.IsDir() {
			return nil, fmt.Errorf("corpus path %s is a directory (use a glob such as %s)", pattern, filepath.Join(pattern, "*"))
		}
		return []string{pattern}, nil
	}
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("corpus glob %q: %w", pattern, err)
	}
	var files []string
	for _, m := range matches {
		st, err := os.Stat(m)
		if err != nil {
			return nil, fmt.Errorf("corpus file %s: %w", m, err)
		}
		if st.Mode().IsRegular() {
			files = append(files, m)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("corpus glob %q matches no files", pattern)
	}
	slices.Sort(files)
	return files, nil
}

func (localSource) size(_ context.Context, name string) (int64, error) {
	st, err := os.Stat(name)
	if err != nil {
		return 0, fmt.Errorf("corpus file %s: %w", name, err)
	}
	return st.Size(), nil
}

func (localSource) open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("corpus file %s: %w", name, err)
	}
	if off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("corpus file %s: %w", name, err)
		}
	}
	if n < 0 {
		return ctxReadCloser{ctx, f, f}, nil
	}
	return ctxReadCloser{ctx, io.LimitReader(f, n), f}, nil
}

func (localSource) readerAt(_ context.Context, name string) (readerAtSeekCloser, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("corpus file %s: %w", name, err)
	}
	return f, nil
}

func (localSource) where(name string) string { return name }

// storeSource reads blobs of a store.
type storeSource struct{ st store.Store }

func (s storeSource) glob(ctx context.Context, pattern string) ([]string, error) {
	if !strings.ContainsAny(pattern, globMeta) {
		if _, err := s.st.Size(ctx, pattern); err != nil {
			return nil, fmt.Errorf("corpus file %s: %w", s.where(pattern), err)
		}
		return []string{pattern}, nil
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("corpus glob %q: %w", pattern, err)
	}
	prefix := pattern[:strings.IndexAny(pattern, globMeta)]
	keys, err := s.st.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("corpus glob %s: %w", s.where(pattern), err)
	}
	var files []string
	for _, k := range keys {
		if ok, _ := path.Match(pattern, k); ok {
			files = append(files, k)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("corpus glob %s matches no blobs", s.where(pattern))
	}
	slices.Sort(files)
	return files, nil
}

func (s storeSource) size(ctx context.Context, name string) (int64, error) {
	n, err := s.st.Size(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("corpus file %s: %w", s.where(name), err)
	}
	return n, nil
}

func (s storeSource) open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	var (
		rc  io.ReadCloser
		err error
	)
	if off == 0 && n < 0 {
		rc, err = s.st.Get(ctx, name)
	} else {
		rc, err = s.st.GetRange(ctx, name, off, n)
	}
	if err != nil {
		return nil, fmt.Errorf("corpus file %s: %w", s.where(name), err)
	}
	return rc, nil
}

func (s storeSource) readerAt(ctx context.Context, name string) (readerAtSeekCloser, error) {
	r, err := store.NewReader(ctx, s.st, name)
	if err != nil {
		return nil, fmt.Errorf("corpus file %s: %w", s.where(name), err)
	}
	return r, nil
}

func (s storeSource) where(name string) string {
	base := s.st.String()
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return base + name
}

// ctxReadCloser stops a long read when the context is cancelled.
type ctxReadCloser struct {
	ctx context.Context
	r   io.Reader
	c   io.Closer
}

func (c ctxReadCloser) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (c ctxReadCloser) Close() error { return c.c.Close() }
