package store

import (
	"context"
	"errors"
	"io"
)

// ErrNotFound is returned (wrapped) when a key does not exist.
var ErrNotFound = errors.New("not found")

// Store is a flat namespace of immutable blobs addressed by slash-separated keys
// such as "datasets/demo/manifest.json".
type Store interface {
	// Put writes the whole blob atomically: readers see the old blob (or
	// nothing) until Put returns successfully, never a partial one.
	Put(ctx context.Context, key string, r io.Reader) error
	// Get opens a blob for reading. A missing key gives an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// GetRange reads length bytes from offset (length < 0: to the end).
	GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Size returns the blob's length in bytes (ErrNotFound if missing).
	Size(ctx context.Context, key string) (int64, error)
	// List returns every key that starts with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// Delete removes a blob; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// String describes the store for logs and errors (e.g. "file:///data").
	String() string
}
