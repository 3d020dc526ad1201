package corpus

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// planJSONL streams every file once and starts a new block at the first line
// start at least BlockBytes after the block's start. Blocks never span files.
func (c *Corpus) planJSONL(ctx context.Context) ([]estPart, error) {
	var (
		parts []estPart
		doc   int64 // global line index of the next line
	)
	for fi, f := range c.files {
		rc, err := c.src.open(ctx, f, 0, -1)
		if err != nil {
			return nil, err
		}
		br := bufio.NewReaderSize(rc, 1<<20)
		var (
			pos, lineLen      int64 // start of the current line, its bytes so far
			line              = int64(1)
			partStart, pstart = int64(0), Part{File: fi, Line: 1, Doc: doc}
		)
		h := newBlockHasher()
		closePart := func() {
			p := pstart
			p.Start, p.End, p.Hash = partStart, pos, h.sum()
			parts = append(parts, estPart{Part: p, tokens: estimateTokens(pos-partStart) + (doc - p.Doc)})
		}
		for {
			chunk, rerr := br.ReadSlice('\n')
			h.Write(chunk)
			lineLen += int64(len(chunk))
			if lineLen > c.opts.MaxDocBytes {
				rc.Close()
				return nil, fmt.Errorf("corpus file %s:%d: line longer than the %d-byte document limit", c.src.where(f), line, c.opts.MaxDocBytes)
			}
			if errors.Is(rerr, bufio.ErrBufferFull) {
				continue
			}
			if rerr != nil && !errors.Is(rerr, io.EOF) {
				rc.Close()
				return nil, fmt.Errorf("corpus file %s: read: %w", c.src.where(f), rerr)
			}
			if lineLen > 0 { // a complete line, or a last one without '\n'
				pos += lineLen
				lineLen = 0
				line++
				doc++
				if line%65536 == 0 {
					if err := ctx.Err(); err != nil {
						rc.Close()
						return nil, err
					}
				}
				if pos-partStart >= c.opts.BlockBytes {
					closePart()
					partStart, pstart = pos, Part{File: fi, Line: line, Doc: doc}
				}
			}
			if rerr != nil {
				break
			}
		}
		rc.Close()
		if pos > partStart {
			closePart()
		}
	}
	return parts, nil
}

func (c *Corpus) readJSONL(ctx context.Context, sh Shard, s sink) error {
	for _, p := range sh.Parts {
		if err := c.jsonlPart(ctx, p, s); err != nil {
			return err
		}
		if err := s.endBlock(); err != nil {
			return err
		}
	}
	return nil
}

func (c *Corpus) jsonlPart(ctx context.Context, p Part, s sink) error {
	name := c.files[p.File]
	var r io.Reader
	if p.Hash != "" {
		// The block (BlockBytes and one line at most) is read whole and
		// checked against the plan before any of it is parsed.
		if p.End-p.Start > c.opts.BlockBytes+c.opts.MaxDocBytes {
			return badData(fmt.Errorf("corpus file %s: bytes %d..%d: longer than a block", c.src.where(name), p.Start, p.End))
		}
		b, err := c.readRange(ctx, name, p.Start, p.End-p.Start)
		if err != nil {
			return err
		}
		if err := checkHash(p.Hash, hashBytes(b), fmt.Sprintf("%s bytes %d..%d", c.src.where(name), p.Start, p.End)); err != nil {
			return err
		}
		r = bytes.NewReader(b)
	} else {
		rc, err := c.src.open(ctx, name, p.Start, p.End-p.Start)
		if err != nil {
			return err
		}
		defer rc.Close()
		r = rc
	}
	br := bufio.NewReaderSize(r, 256<<10)
	var (
		read int64
		doc  = p.Doc
		line = max(p.Line, 1)
		buf  []byte
	)
	for {
		buf = buf[:0]
		var rerr error
		for {
			var chunk []byte
			chunk, rerr = br.ReadSlice('\n')
			buf = append(buf, chunk...)
			if int64(len(buf)) > c.opts.MaxDocBytes {
				return fmt.Errorf("corpus file %s:%d: line longer than the %d-byte document limit", c.src.where(name), line, c.opts.MaxDocBytes)
			}
			if !errors.Is(rerr, bufio.ErrBufferFull) {
				break
			}
		}
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return fmt.Errorf("corpus file %s:%d: read: %w", c.src.where(name), line, rerr)
		}
		if len(buf) > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			read += int64(len(buf))
			n := int64(len(buf))
			if p.Start == 0 && line == 1 {
				buf = bytes.TrimPrefix(buf, []byte("\uFEFF"))
			}
			text, ok, err := parseJSONLine(buf, c.spec.Field)
			if err != nil {
				return badData(fmt.Errorf("corpus file %s:%d: %w", c.src.where(name), line, err))
			}
			if ok {
				err = s.add(doc, text, n)
			} else {
				err = s.skip(n)
			}
			if err != nil {
				return err
			}
			doc++
			line++
		}
		if rerr != nil {
			break
		}
	}
	if read != p.End-p.Start {
		return badData(fmt.Errorf("corpus file %s: bytes %d..%d: read only %d bytes; did the file change since planning?", c.src.where(name), p.Start, p.End, read))
	}
	return nil
}

// parseJSONLine returns the string field of one JSONL line. A blank line or
// a null field gives ok == false (no document); anything else that is not an
// object with a string field is an error.
func parseJSONLine(line []byte, field string) (text string, ok bool, err error) {
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 {
		return "", false, nil
	}
	if trimmed[0] != '{' {
		return "", false, fmt.Errorf("not a JSON object: %s", preview(trimmed))
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &obj); err != nil {
		return "", false, fmt.Errorf("bad JSON: %v", err)
	}
	raw, found := obj[field]
	if !found {
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, fmt.Sprintf("%q", k))
		}
		slices.Sort(keys)
		return "", false, fmt.Errorf("no field %q (the line has %s)", field, orNone(strings.Join(keys, ", ")))
	}
	if string(raw) == "null" {
		return "", false, nil
	}
	if err := json.Unmarshal(raw, &text); err != nil {
		return "", false, fmt.Errorf("field %q is not a string: %s", field, preview(raw))
	}
	return text, true, nil
}

func preview(b []byte) string {
	const n = 40
	if len(b) > n {
		return fmt.Sprintf("%q...", b[:n])
	}
	return fmt.Sprintf("%q", b)
}

func orNone(s string) string {
	if s == "" {
		return "no fields"
	}
	return "fields " + s
}
