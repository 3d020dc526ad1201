package corpus

import (
	"context"
	"fmt"
	"io"
)

// planText groups consecutive files into blocks of at least BlockBytes.
func (c *Corpus) planText(ctx context.Context) ([]estPart, error) {
	var (
		parts []estPart
		bytes int64
		total int64
	)
	start := 0
	for i, f := range c.files {
		n, err := c.src.size(ctx, f)
		if err != nil {
			return nil, err
		}
		if n > c.opts.MaxDocBytes {
			return nil, fmt.Errorf("corpus file %s: %d bytes is over the %d-byte document limit", c.src.where(f), n, c.opts.MaxDocBytes)
		}
		bytes += n
		total += n
		if bytes >= c.opts.BlockBytes || i == len(c.files)-1 {
			parts = append(parts, estPart{
				Part:   Part{File: start, Start: int64(start), End: int64(i + 1), Doc: int64(start)},
				tokens: estimateTokens(bytes) + int64(i+1-start),
			})
			start, bytes = i+1, 0
		}
	}
	if total == 0 {
		return nil, nil // Plan says the corpus is empty
	}
	return parts, nil
}

func (c *Corpus) readText(ctx context.Context, sh Shard, s sink) error {
	for _, p := range sh.Parts {
		// The block's files are read and checked against the plan's hash
		// before any is tokenized.
		texts, hash, err := c.readTextBlock(ctx, p)
		if err != nil {
			return err
		}
		what := c.src.where(c.files[p.Start])
		if p.End-p.Start > 1 {
			what = fmt.Sprintf("files %s .. %s", what, c.src.where(c.files[p.End-1]))
		}
		if err := checkHash(p.Hash, hash, what); err != nil {
			return err
		}
		for k, text := range texts {
			if err := s.add(p.Start+int64(k), string(text), int64(len(text))); err != nil {
				return err
			}
		}
		if err := s.endBlock(); err != nil {
			return err
		}
	}
	return nil
}

// readTextBlock reads the files of text block p, each whole, and returns
// them with the block's hash: each file's length, then its bytes. The
// planner records that hash; readText checks it.
func (c *Corpus) readTextBlock(ctx context.Context, p Part) ([][]byte, string, error) {
	texts := make([][]byte, 0, p.End-p.Start)
	h := newBlockHasher()
	for i := p.Start; i < p.End; i++ {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		text, err := c.readWhole(ctx, c.files[i])
		if err != nil {
			return nil, "", err
		}
		fmt.Fprintf(h, "%d\n", len(text))
		h.Write(text)
		texts = append(texts, text)
	}
	return texts, h.sum(), nil
}

// readWhole reads one document file, refusing files over MaxDocBytes.
func (c *Corpus) readWhole(ctx context.Context, name string) ([]byte, error) {
	rc, err := c.src.open(ctx, name, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, c.opts.MaxDocBytes+1))
	if err != nil {
		return nil, fmt.Errorf("corpus file %s: read: %w", c.src.where(name), err)
	}
	if int64(len(data)) > c.opts.MaxDocBytes {
		return nil, fmt.Errorf("corpus file %s: over the %d-byte document limit", c.src.where(name), c.opts.MaxDocBytes)
	}
	return data, nil
}
