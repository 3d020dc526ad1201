package corpus

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// planTokens cuts every token file into parts of tokensPerShard window
// starts. Windows do not depend on the parts: window k of a file always
// covers tokens [k*nCtx, (k+1)*nCtx).
func (c *Corpus) planTokens(ctx context.Context, tokensPerShard int64) ([]estPart, error) {
	var parts []estPart
	for fi, f := range c.files {
		size, err := c.src.size(ctx, f)
		if err != nil {
			return nil, err
		}
		if size%2 != 0 {
			return nil, fmt.Errorf("corpus token file %s: %d bytes is odd; want uint16 little-endian tokens", c.src.where(f), size)
		}
		n := size / 2
		for s := int64(0); s < n; s += tokensPerShard {
			e := min(s+tokensPerShard, n)
			hashEnd := min(n, e+int64(c.opts.NCtx)-1)
			parts = append(parts, estPart{Part: Part{File: fi, Start: s, End: e, Doc: int64(fi), HashEnd: hashEnd}, tokens: e - s})
		}
	}
	return parts, nil
}

// tokenWindows emits, for each part, the whole windows that start within it.
func (c *Corpus) tokenWindows(ctx context.Context, sh Shard, nCtx int, st *Stats, fn func(Window) error) error {
	n64 := int64(nCtx)
	for _, p := range sh.Parts {
		name := c.files[p.File]
		size, err := c.src.size(ctx, name)
		if err != nil {
			return err
		}
		if size%2 != 0 {
			return fmt.Errorf("corpus token file %s: %d bytes is odd; want uint16 little-endian tokens", c.src.where(name), size)
		}
		total := size / 2
		if p.End > total {
			return fmt.Errorf("corpus token file %s: has %d tokens, the shard wants %d..%d; did the file change since planning?", c.src.where(name), total, p.Start, p.End)
		}
		first := (p.Start + n64 - 1) / n64 * n64 // first window start in the part
		whole := total / n64 * n64               // end of the last whole window
		last := min(p.End, whole)                // window starts are < last
		if tail := total - whole; tail > 0 && whole >= p.Start && whole < p.End {
			st.Dropped += tail
			st.Tokens += tail
		}
		if first >= last {
			continue
		}
		if p.Hash != "" {
			// Read what the plan hashed, check it, then cut the windows
			// from memory: a changed part is never used.
			readEnd := first + (last-first+n64-1)/n64*n64
			if readEnd > p.HashEnd {
				return fmt.Errorf("corpus token file %s: tokens %d..%d were planned for windows of at most %d tokens, not %d", c.src.where(name), p.Start, p.End, p.HashEnd-p.End+1, nCtx)
			}
			raw, err := c.readRange(ctx, name, 2*p.Start, 2*(p.HashEnd-p.Start))
			if err != nil {
				return err
			}
			if err := checkHash(p.Hash, hashBytes(raw), fmt.Sprintf("%s tokens %d..%d", c.src.where(name), p.Start, p.HashEnd)); err != nil {
				return err
			}
			raw = raw[2*(first-p.Start) : 2*(readEnd-p.Start)]
			if err := c.tokenWindowsFrom(ctx, bytes.NewReader(raw), name, first, last, nCtx, st, int64(p.File), fn); err != nil {
				return err
			}
			continue
		}
		if err := c.readTokenWindows(ctx, name, first, last, nCtx, st, int64(p.File), fn); err != nil {
			return err
		}
	}
	return nil
}

func (c *Corpus) readTokenWindows(ctx context.Context, name string, first, last int64, nCtx int, st *Stats, doc int64, fn func(Window) error) error {
	nWin := (last - first + int64(nCtx) - 1) / int64(nCtx)
	length := nWin * int64(nCtx) * 2
	rc, err := c.src.open(ctx, name, first*2, length)
	if err != nil {
		return err
	}
	defer rc.Close()
	return c.tokenWindowsFrom(ctx, bufio.NewReaderSize(rc, 256<<10), name, first, last, nCtx, st, doc, fn)
}

// tokenWindowsFrom cuts the windows starting in [first, last) from br,
// which starts at token first.
func (c *Corpus) tokenWindowsFrom(ctx context.Context, br io.Reader, name string, first, last int64, nCtx int, st *Stats, doc int64, fn func(Window) error) error {
	nWin := (last - first + int64(nCtx) - 1) / int64(nCtx)
	raw := make([]byte, 2*nCtx)
	for k := int64(0); k < nWin; k++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := first + k*int64(nCtx)
		if _, err := io.ReadFull(br, raw); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return fmt.Errorf("corpus token file %s: ends before token %d; did the file change since planning?", c.src.where(name), start+int64(nCtx))
			}
			return fmt.Errorf("corpus token file %s: read at token %d: %w", c.src.where(name), start, err)
		}
		toks, bad := decodeTokens(raw, c.opts.VocabSize)
		if bad >= 0 {
			at := start + int64(bad)
			return badData(fmt.Errorf("corpus token file %s: token %d at index %d (byte offset %d) is not below the vocabulary size %d", c.src.where(name), toks[bad], at, 2*at, c.opts.VocabSize))
		}
		st.Bytes += int64(len(raw))
		st.Tokens += int64(nCtx)
		st.Windows++
		if err := fn(Window{Doc: doc, Offset: start, Tokens: toks}); err != nil {
			return err
		}
	}
	return nil
}

// decodeTokens turns uint16 little-endian bytes into ids; bad is the index of
// the first id >= vocab, or -1.
func decodeTokens(raw []byte, vocab int) (toks []int32, bad int) {
	toks = make([]int32, len(raw)/2)
	bad = -1
	for i := range toks {
		t := int32(binary.LittleEndian.Uint16(raw[2*i:]))
		toks[i] = t
		if bad < 0 && int(t) >= vocab {
			bad = i
		}
	}
	return toks, bad
}

// checkVocab fails with ErrBadData at the first id >= VocabSize in raw,
// the uint16 tokens of name from token index start.
func (c *Corpus) checkVocab(name string, start int64, raw []byte) error {
	toks, bad := decodeTokens(raw, c.opts.VocabSize)
	if bad < 0 {
		return nil
	}
	at := start + int64(bad)
	return badData(fmt.Errorf("corpus token file %s: token %d at index %d (byte offset %d) is not below the vocabulary size %d", c.src.where(name), toks[bad], at, 2*at, c.opts.VocabSize))
}

// CheckTokens reads every file of a token corpus and fails (ErrBadData,
// naming the file and byte offset) at the first id not below
// Options.VocabSize in a whole window of Options.NCtx tokens, so that a client can refuse bad input before it
// submits a job. It reads the whole corpus: a caller bounds the cost with
// maxBytes (the sum of the file sizes; over it nothing is read and ok is
// false). Other kinds have nothing to check (ok is true).
func (c *Corpus) CheckTokens(ctx context.Context, maxBytes int64) (ok bool, err error) {
	if c.spec.Kind != Tokens {
		return true, nil
	}
	var total int64
	for _, f := range c.files {
		n, err := c.src.size(ctx, f)
		if err != nil {
			return false, err
		}
		total += n
	}
	if total > maxBytes {
		return false, nil
	}
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	for _, f := range c.files {
		size, err := c.src.size(ctx, f)
		if err != nil {
			return false, err
		}
		// The tokens of whole windows of Options.NCtx: the tail is never read.
		whole := size / 2 / int64(c.opts.NCtx) * int64(c.opts.NCtx)
		if whole == 0 {
			continue
		}
		rc, err := c.src.open(ctx, f, 0, 2*whole)
		if err != nil {
			return false, err
		}
		var tok int64
		for {
			if err := ctx.Err(); err != nil {
				rc.Close()
				return false, err
			}
			n, rerr := io.ReadFull(rc, buf)
			n &^= 1
			if err := c.checkVocab(f, tok, buf[:n]); err != nil {
				rc.Close()
				return false, err
			}
			tok += int64(n / 2)
			if rerr != nil {
				if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
					break
				}
				rc.Close()
				return false, fmt.Errorf("corpus token file %s: read: %w", c.src.where(f), rerr)
			}
		}
		rc.Close()
	}
	return true, nil
}
