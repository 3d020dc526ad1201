package store

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Reader gives one blob random access (io.ReaderAt, io.ReadSeeker) through
// ranged reads, so Parquet footers, row groups and corpus byte ranges can be
// read from any store without downloading the blob. Prefetch caches a range:
// reads inside it cost no request. A Reader is not safe for concurrent use.
type Reader struct {
	ctx    context.Context
	st     Store
	key    string
	size   int64
	pos    int64
	chunks []chunk
}

type chunk struct {
	off  int64
	data []byte
}

// NewReader opens key for random access (one Size request).
func NewReader(ctx context.Context, st Store, key string) (*Reader, error) {
	size, err := st.Size(ctx, key)
	if err != nil {
		return nil, err
	}
	return &Reader{ctx: ctx, st: st, key: key, size: size}, nil
}

// NewReaderSize opens key for random access when its size is already known
// (no request until the first read), e.g. from a cached Parquet footer.
func NewReaderSize(ctx context.Context, st Store, key string, size int64) *Reader {
	return &Reader{ctx: ctx, st: st, key: key, size: size}
}

// Size is the blob's length.
func (r *Reader) Size() int64 { return r.size }

// Prefetch reads [off, off+n) (cut at the end of the blob) into memory.
func (r *Reader) Prefetch(off, n int64) error {
	if off < 0 || off >= r.size || n <= 0 {
		return nil
	}
	n = min(n, r.size-off)
	buf := make([]byte, n)
	if err := r.fetch(buf, off); err != nil {
		return err
	}
	r.chunks = append(r.chunks, chunk{off: off, data: buf})
	return nil
}

func (r *Reader) fetch(p []byte, off int64) error {
	rc, err := r.st.GetRange(r.ctx, r.key, off, int64(len(p)))
	if err != nil {
		return fmt.Errorf("reading %s [%d, %d): %w", r.key, off, off+int64(len(p)), err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, p); err != nil {
		return fmt.Errorf("reading %s [%d, %d): %w", r.key, off, off+int64(len(p)), err)
	}
	return nil
}

// ReadAt implements io.ReaderAt.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("reading %s: negative offset %d", r.key, off)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), r.size-off)
	var eof error
	if want < int64(len(p)) {
		eof = io.EOF
	}
	for _, c := range r.chunks {
		if off >= c.off && off+want <= c.off+int64(len(c.data)) {
			return copy(p[:want], c.data[off-c.off:]), eof
		}
	}
	if err := r.fetch(p[:want], off); err != nil {
		return 0, err
	}
	return int(want), eof
}

// Read implements io.Reader from the current position.
func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.pos)
	r.pos += int64(n)
	if errors.Is(err, io.EOF) && n > 0 {
		err = nil
	}
	return n, err
}

// Seek implements io.Seeker.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, fmt.Errorf("seek in %s: bad whence %d", r.key, whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("seek in %s to negative offset %d", r.key, offset)
	}
	r.pos = offset
	return offset, nil
}

// Close releases the cached ranges.
func (r *Reader) Close() error {
	r.chunks = nil
	return nil
}
