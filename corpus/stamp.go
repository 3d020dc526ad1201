package corpus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"time"
)

// FileStamp is what planning saw of one corpus file: its size and, where
// the source has one, its modification time. A worker compares it with the
// file before reading a shard, so a file that changed since planning fails
// the shard instead of mixing old and new content in one dataset.
type FileStamp struct {
	File    int   `json:"file"`
	Size    int64 `json:"size"`
	ModTime int64 `json:"mtime,omitempty"` // unix nanoseconds; 0: unknown (store sources)
}

func (localSource) stamp(_ context.Context, name string) (int64, int64, error) {
	st, err := os.Stat(name)
	if err != nil {
		return 0, 0, fmt.Errorf("corpus file %s: %w", name, err)
	}
	return st.Size(), st.ModTime().UnixNano(), nil
}

func (s storeSource) stamp(ctx context.Context, name string) (int64, int64, error) {
	n, err := s.size(ctx, name)
	return n, 0, err
}

type stamper interface {
	stamp(ctx context.Context, name string) (size, mtime int64, err error)
}

func (c *Corpus) fileStamp(ctx context.Context, i int) (FileStamp, error) {
	size, mtime, err := c.src.(stamper).stamp(ctx, c.files[i])
	return FileStamp{File: i, Size: size, ModTime: mtime}, err
}

// shardFiles lists the file indexes a shard reads.
func (c *Corpus) shardFiles(sh Shard) []int {
	if c.spec.Kind == Synthetic {
		return nil
	}
	seen := map[int]bool{}
	var out []int
	add := func(i int) {
		if !seen[i] && i >= 0 && i < len(c.files) {
			seen[i] = true
			out = append(out, i)
		}
	}
	for _, p := range sh.Parts {
		if c.spec.Kind == Text {
			for i := p.Start; i < p.End; i++ {
				add(int(i))
			}
		} else {
			add(p.File)
		}
	}
	return out
}

// stampShards records the files of every shard.
func (c *Corpus) stampShards(ctx context.Context, shards []Shard) error {
	cache := map[int]FileStamp{}
	for si := range shards {
		for _, i := range c.shardFiles(shards[si]) {
			fs, ok := cache[i]
			if !ok {
				var err error
				if fs, err = c.fileStamp(ctx, i); err != nil {
					return err
				}
				cache[i] = fs
			}
			shards[si].Files = append(shards[si].Files, fs)
		}
	}
	return nil
}

// checkStamps compares a shard's files with what planning saw.
func (c *Corpus) checkStamps(ctx context.Context, sh Shard) error {
	for _, want := range sh.Files {
		if want.File < 0 || want.File >= len(c.files) {
			return changedError{fmt.Errorf("corpus changed since the job was planned: file %d of the plan is gone (%d files now)", want.File, len(c.files))}
		}
		got, err := c.fileStamp(ctx, want.File)
		if err != nil {
			return err
		}
		if got.Size != want.Size || (want.ModTime != 0 && got.ModTime != want.ModTime) {
			return changedError{fmt.Errorf("corpus changed since the job was planned: %s was %d bytes modified %s, now %d bytes modified %s",
				c.src.where(c.files[want.File]), want.Size, stampTime(want.ModTime), got.Size, stampTime(got.ModTime))}
		}
	}
	return nil
}

func stampTime(ns int64) string {
	if ns == 0 {
		return "(unknown)"
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

// ContentStamp identifies the corpus's current content cheaply: its
// fingerprint (spec, block size, file names) and every file's size and
// modification time. A job's identity includes it, so a changed corpus
// is a new job, never a finished or half-done one reused.
func (c *Corpus) ContentStamp(ctx context.Context) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", c.fingerprint)
	for i := range c.files {
		fs, err := c.fileStamp(ctx, i)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%d %d %d\n", i, fs.Size, fs.ModTime)
	}
	return hex.EncodeToString(h.Sum(nil)[:12]), nil
}
