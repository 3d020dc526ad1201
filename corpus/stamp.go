package corpus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sync/errgroup"
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
// modification time, and, for local files on Linux, status change time
// (ctime: an edit that restores size and modification time still moves
// it, so a finished job is not reused after one; a chmod or a rename moves
// it too, which only costs a recomputation). A job's identity includes it,
// so a changed corpus is a new job, never a finished or half-done one
// reused. The block hashes taken at planning (Part.Hash) are what workers
// check.
func (c *Corpus) ContentStamp(ctx context.Context) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", c.fingerprint)
	for i := range c.files {
		fs, err := c.fileStamp(ctx, i)
		if err != nil {
			return "", err
		}
		var ctime int64
		if _, local := c.src.(localSource); local {
			if fi, err := os.Stat(c.files[i]); err == nil {
				ctime = changeTime(fi)
			}
		}
		fmt.Fprintf(h, "%d %d %d %d\n", i, fs.Size, fs.ModTime, ctime)
	}
	return hex.EncodeToString(h.Sum(nil)[:12]), nil
}

// Block hashes. Size and modification time miss an edit that keeps both
// (touch -d after editing, a copy that preserves times), so planning also
// records, in Part.Hash, an xxhash64 of the bytes each block reads: the
// files of a text block, the byte range of a JSONL block, the tokens of a
// token part and the windows that run past its end (up to Part.HashEnd),
// the decoded rows (ids and texts) of a Parquet block. Planning JSONL
// already streams every byte; text, token and Parquet corpora are read
// (Parquet: decoded) once more at planning for it (xxhash runs at several
// GB/s, so the cost is the read). A worker reads or decodes a block into
// memory, hashes it and compares before it tokenizes or uses any of it, so
// a changed block fails the shard with ErrChanged and is never mixed in.

// blockHasher hashes the bytes of one block.
type blockHasher struct{ h *xxhash.Digest }

func newBlockHasher() blockHasher { return blockHasher{xxhash.New()} }

func (b blockHasher) Write(p []byte) (int, error) { return b.h.Write(p) }

// sum returns the hash as 16 hex digits and resets the hasher.
func (b blockHasher) sum() string {
	s := fmt.Sprintf("%016x", b.h.Sum64())
	b.h.Reset()
	return s
}

// hashBytes is the block hash of b.
func hashBytes(b []byte) string { return fmt.Sprintf("%016x", xxhash.Sum64(b)) }

// checkHash compares a block's hash with the plan's (no hash planned: an
// older plan, nothing to compare).
func checkHash(want, got, what string) error {
	if want == "" || want == got {
		return nil
	}
	return changedError{fmt.Errorf("corpus changed since the job was planned: %s has other content (block hash %s, planned %s)", what, got, want)}
}

// readRange reads n bytes at off of a corpus file into memory.
func (c *Corpus) readRange(ctx context.Context, name string, off, n int64) ([]byte, error) {
	rc, err := c.src.open(ctx, name, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(rc, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, changedError{fmt.Errorf("corpus changed since the job was planned: %s ends before byte %d", c.src.where(name), off+n)}
		}
		return nil, fmt.Errorf("corpus file %s: read bytes %d..%d: %w", c.src.where(name), off, off+n, err)
	}
	return buf, nil
}

// hashParts records the block hash of every part whose kind is not hashed
// while planning (JSONL is, as it streams).
func (c *Corpus) hashParts(ctx context.Context, parts []estPart) error {
	switch c.spec.Kind {
	case Text:
		// Many small files: a few readers at once hide the per-file cost.
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(4)
		for i := range parts {
			g.Go(func() error {
				_, hash, err := c.readTextBlock(gctx, parts[i].Part)
				parts[i].Hash = hash
				return err
			})
		}
		return g.Wait()
	case Tokens:
		for i := range parts {
			p := &parts[i].Part
			b, err := c.readRange(ctx, c.files[p.File], 2*p.Start, 2*(p.HashEnd-p.Start))
			if err != nil {
				return err
			}
			// The bytes are here: an id beyond the vocabulary in a window
			// of NCtx tokens fails the plan, before any shard runs (the
			// tail shorter than a window is never read).
			whole := p.HashEnd
			if size, err := c.src.size(ctx, c.files[p.File]); err == nil {
				whole = min(whole, size/2/int64(c.opts.NCtx)*int64(c.opts.NCtx))
			}
			if whole > p.Start {
				if err := c.checkVocab(c.files[p.File], p.Start, b[:2*(whole-p.Start)]); err != nil {
					return err
				}
			}
			p.Hash = hashBytes(b)
		}
	case Parquet:
		return c.hashParquet(ctx, parts)
	}
	return nil
}
