package corpus

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
)

// pqFile is an open Parquet file and the index of its text column.
type pqFile struct {
	r      *file.Reader
	col    int
	maxDef int16
}

func (p *pqFile) Close() error { return p.r.Close() }

// openParquet opens file i and finds the text column, listing the columns
// when it is missing or not a plain string column.
func (c *Corpus) openParquet(ctx context.Context, i int) (*pqFile, error) {
	name := c.files[i]
	ra, err := c.src.readerAt(ctx, name)
	if err != nil {
		return nil, err
	}
	r, err := file.NewParquetReader(ra)
	if err != nil {
		ra.Close()
		return nil, fmt.Errorf("corpus file %s: not a readable Parquet file: %w", c.src.where(name), err)
	}
	sc := r.MetaData().Schema
	col := sc.ColumnIndexByName(c.spec.Field)
	if col < 0 || sc.Column(col).MaxRepetitionLevel() > 0 || sc.Column(col).PhysicalType() != parquet.Types.ByteArray {
		var cols []string
		for _, cd := range sc.Columns() {
			cols = append(cols, fmt.Sprintf("%s (%s)", cd.Path(), cd.PhysicalType()))
		}
		r.Close()
		what := "has no column"
		if col >= 0 {
			what = "has no top-level string column"
		}
		return nil, fmt.Errorf("corpus file %s %s %q; its columns: %s", c.src.where(name), what, c.spec.Field, strings.Join(cols, ", "))
	}
	return &pqFile{r: r, col: col, maxDef: sc.Column(col).MaxDefinitionLevel()}, nil
}

// planParquet cuts every row group into blocks of about BlockBytes of
// uncompressed text column, by the row group's average row size.
func (c *Corpus) planParquet(ctx context.Context) ([]estPart, error) {
	var (
		parts []estPart
		doc   int64
	)
	for fi := range c.files {
		pf, err := c.openParquet(ctx, fi)
		if err != nil {
			return nil, err
		}
		md := pf.r.MetaData()
		var row int64
		for g := 0; g < md.NumRowGroups(); g++ {
			rg := md.RowGroup(g)
			rows := rg.NumRows()
			cc, err := rg.ColumnChunk(pf.col)
			if err != nil {
				pf.Close()
				return nil, fmt.Errorf("corpus file %s: row group %d: %w", c.src.where(c.files[fi]), g, err)
			}
			bytes := max(cc.TotalUncompressedSize(), 1)
			per := max(1, rows*c.opts.BlockBytes/bytes)
			for s := int64(0); s < rows; s += per {
				e := min(s+per, rows)
				parts = append(parts, estPart{
					Part:   Part{File: fi, Start: row + s, End: row + e, Doc: doc + s},
					tokens: estimateTokens(bytes*(e-s)/rows) + (e - s),
				})
			}
			row += rows
			doc += rows
		}
		pf.Close()
	}
	return parts, nil
}

const pqBatch = 256

func (c *Corpus) readParquet(ctx context.Context, sh Shard, s sink) error {
	var (
		pf   *pqFile
		open = -1
	)
	defer func() {
		if pf != nil {
			pf.Close()
		}
	}()
	for _, p := range sh.Parts {
		if p.File != open {
			if pf != nil {
				pf.Close()
				pf = nil
			}
			var err error
			if pf, err = c.openParquet(ctx, p.File); err != nil {
				return err
			}
			open = p.File
		}
		if err := c.parquetPart(ctx, pf, p, s); err != nil {
			return err
		}
		if err := s.endBlock(); err != nil {
			return err
		}
	}
	return nil
}

// parquetPart decodes a block and checks its hash before handing its
// documents to s.
func (c *Corpus) parquetPart(ctx context.Context, pf *pqFile, p Part, s sink) error {
	if p.Hash == "" {
		return c.decodeParquetPart(ctx, pf, p, s)
	}
	col := &collected{h: newBlockHasher()}
	if err := c.decodeParquetPart(ctx, pf, p, col); err != nil {
		return err
	}
	if err := checkHash(p.Hash, col.h.sum(), fmt.Sprintf("%s rows %d..%d", c.src.where(c.files[p.File]), p.Start, p.End)); err != nil {
		return err
	}
	for k, text := range col.texts {
		if err := s.add(col.docs[k], text, int64(len(text))); err != nil {
			return err
		}
	}
	return nil
}

func (c *Corpus) decodeParquetPart(ctx context.Context, pf *pqFile, p Part, s sink) error {
	name := c.src.where(c.files[p.File])
	var (
		vals = make([]parquet.ByteArray, pqBatch)
		defs = make([]int16, pqBatch)
		row  int64 // first row of the current row group
		doc  = p.Doc
	)
	for g := 0; g < pf.r.NumRowGroups() && row < p.End; g++ {
		rg := pf.r.RowGroup(g)
		rows := rg.NumRows()
		lo, hi := max(p.Start, row), min(p.End, row+rows)
		if lo >= hi {
			row += rows
			continue
		}
		cr, err := rg.Column(pf.col)
		if err != nil {
			return fmt.Errorf("corpus file %s: row group %d: %w", name, g, err)
		}
		br, ok := cr.(*file.ByteArrayColumnChunkReader)
		if !ok {
			return fmt.Errorf("corpus file %s: column %q is not a byte array column", name, c.spec.Field)
		}
		if lo > row {
			if _, err := br.Skip(lo - row); err != nil {
				return fmt.Errorf("corpus file %s: row group %d: skip to row %d: %w", name, g, lo, err)
			}
		}
		for left := hi - lo; left > 0; {
			if err := ctx.Err(); err != nil {
				return err
			}
			n, nv, err := br.ReadBatch(min(left, pqBatch), vals, defs, nil)
			if err != nil {
				return fmt.Errorf("corpus file %s: row group %d: %w", name, g, err)
			}
			if n == 0 {
				return fmt.Errorf("corpus file %s: row group %d ends before row %d", name, g, hi)
			}
			v := 0
			for i := range int(n) {
				if pf.maxDef > 0 && defs[i] < pf.maxDef {
					doc++ // null: no document
					continue
				}
				if v >= nv {
					return fmt.Errorf("corpus file %s: row group %d: fewer values than rows", name, g)
				}
				text := vals[v]
				v++
				if int64(len(text)) > c.opts.MaxDocBytes {
					return fmt.Errorf("corpus file %s: row %d: value over the %d-byte document limit", name, lo+(hi-lo-left)+int64(i), c.opts.MaxDocBytes)
				}
				if err := s.add(doc, string(text), int64(len(text))); err != nil {
					return err
				}
				doc++
			}
			left -= n
		}
		row += rows
	}
	if row < p.End {
		return badData(fmt.Errorf("corpus file %s: has %d rows, the shard wants rows %d..%d; did the file change since planning?", name, row, p.Start, p.End))
	}
	return nil
}

// collected holds one block's documents until its hash is checked.
type collected struct {
	docs  []int64
	texts []string
	h     blockHasher
}

func (c *collected) add(doc int64, text string, _ int64) error {
	fmt.Fprintf(c.h, "%d %d\n", doc, len(text))
	io.WriteString(c.h, text)
	c.docs, c.texts = append(c.docs, doc), append(c.texts, text)
	return nil
}

func (c *collected) skip(int64) error { return nil }

func (c *collected) endBlock() error { return nil }

// partRouter hashes the documents of consecutive parts of one file, each
// into its part's hash, as collected does for one part.
type partRouter struct {
	parts []estPart
	k     int
	h     blockHasher
}

func (r *partRouter) add(doc int64, text string, _ int64) error {
	for r.k < len(r.parts) && doc >= r.parts[r.k].Doc+(r.parts[r.k].End-r.parts[r.k].Start) {
		r.next()
	}
	if r.k >= len(r.parts) {
		return fmt.Errorf("corpus: document %d beyond the planned parts", doc)
	}
	fmt.Fprintf(r.h, "%d %d\n", doc, len(text))
	io.WriteString(r.h, text)
	return nil
}

// next closes the current part's hash.
func (r *partRouter) next() {
	r.parts[r.k].Hash = r.h.sum()
	r.k++
}

func (r *partRouter) skip(int64) error { return nil }

func (r *partRouter) endBlock() error { return nil }

// hashParquet records the hash of every part's decoded values (document
// ids and texts: a Parquet block is a row range inside a row group, so the
// decoded rows are what it reads; a null that becomes a value or the
// reverse changes the ids). Each file is decoded once, front to back.
func (c *Corpus) hashParquet(ctx context.Context, parts []estPart) error {
	for i := 0; i < len(parts); {
		j := i
		for j < len(parts) && parts[j].File == parts[i].File {
			j++
		}
		pf, err := c.openParquet(ctx, parts[i].File)
		if err != nil {
			return err
		}
		all := Part{File: parts[i].File, Start: parts[i].Start, End: parts[j-1].End, Doc: parts[i].Doc}
		r := &partRouter{parts: parts[i:j], h: newBlockHasher()}
		err = c.decodeParquetPart(ctx, pf, all, r)
		pf.Close()
		if err != nil {
			return err
		}
		for r.k < len(r.parts) {
			r.next()
		}
		i = j
	}
	return nil
}
