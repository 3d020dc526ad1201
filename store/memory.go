package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
)

// Memory is a Store held in process memory, for tests and small tools. It is
// safe for concurrent use; Put stores a private copy, Get reads a snapshot.
type Memory struct {
	name  string
	mu    sync.RWMutex
	blobs map[string][]byte
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{blobs: map[string][]byte{}} }

var (
	namedMu     sync.Mutex
	namedMemory = map[string]*Memory{}
)

// namedMemoryStore returns the process-wide store called name, so that parts
// of one process (a coordinator and its in-process workers in a test) can
// open "mem://NAME" separately and see the same blobs.
func namedMemoryStore(name string) *Memory {
	namedMu.Lock()
	defer namedMu.Unlock()
	m, ok := namedMemory[name]
	if !ok {
		m = NewMemory()
		m.name = name
		namedMemory[name] = m
	}
	return m
}

// String returns "mem://" or "mem://NAME".
func (m *Memory) String() string { return "mem://" + m.name }

func (m *Memory) wrap(op, key string, err error) error {
	return fmt.Errorf("store %s: %s %q: %w", m, op, key, err)
}

// Put stores a copy of everything r yields; on a read error nothing changes.
func (m *Memory) Put(ctx context.Context, key string, r io.Reader) error {
	if err := ValidateKey(key); err != nil {
		return m.wrap("put", key, err)
	}
	data, err := io.ReadAll(ctxReader{ctx, r})
	if err != nil {
		return m.wrap("put", key, fmt.Errorf("read: %w", err))
	}
	m.mu.Lock()
	m.blobs[key] = data
	m.mu.Unlock()
	return nil
}

func (m *Memory) load(op, key string) ([]byte, error) {
	if err := ValidateKey(key); err != nil {
		return nil, m.wrap(op, key, err)
	}
	m.mu.RLock()
	data, ok := m.blobs[key]
	m.mu.RUnlock()
	if !ok {
		return nil, m.wrap(op, key, ErrNotFound)
	}
	return data, nil
}

// Get returns a reader over key's blob. Blobs are never mutated in place, so
// the reader needs no copy.
func (m *Memory) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, m.wrap("get", key, err)
	}
	data, err := m.load("get", key)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// GetRange reads length bytes of key from offset (length < 0: to the end).
func (m *Memory) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, m.wrap("get range", key, err)
	}
	if err := checkRange(offset, length); err != nil {
		return nil, m.wrap("get range", key, err)
	}
	data, err := m.load("get range", key)
	if err != nil {
		return nil, err
	}
	n, err := rangeLen(int64(len(data)), offset, length)
	if err != nil {
		return nil, m.wrap("get range", key, err)
	}
	return io.NopCloser(bytes.NewReader(data[offset : offset+n])), nil
}

// Size returns key's length.
func (m *Memory) Size(ctx context.Context, key string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, m.wrap("size", key, err)
	}
	data, err := m.load("size", key)
	if err != nil {
		return 0, err
	}
	return int64(len(data)), nil
}

// List returns the keys starting with prefix, sorted.
func (m *Memory) List(ctx context.Context, prefix string) ([]string, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, fmt.Errorf("store %s: list %q: %w", m, prefix, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store %s: list %q: %w", m, prefix, err)
	}
	m.mu.RLock()
	var keys []string
	for k := range m.blobs {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	m.mu.RUnlock()
	slices.Sort(keys)
	return keys, nil
}

// Delete removes key; a missing key is not an error.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := checkKey(ctx, key); err != nil {
		return m.wrap("delete", key, err)
	}
	m.mu.Lock()
	delete(m.blobs, key)
	m.mu.Unlock()
	return nil
}
