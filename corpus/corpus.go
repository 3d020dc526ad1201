package corpus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"runtime"

	"tdb/model/tokenizer"
)

// Defaults for Options.
const (
	DefaultBlockBytes  = 64 << 10
	DefaultMaxDocBytes = 64 << 20
	DefaultNCtx        = 64
)

// Options tune how a corpus is opened. The zero value is ready to use for
// local corpora.
type Options struct {
	// Opener resolves URL paths; without it a remote spec is an error.
	Opener Opener
	// BlockBytes is the source size of a block, the unit of windowing
	// (default 64 KiB: about 16k tokens of English, so the dropped partial
	// windows cost about 0.2% of the tokens at nCtx 64). It is part of the
	// corpus identity: the coordinator and the workers must agree on it.
	BlockBytes int64
	// MaxDocBytes bounds one document (a text file, a JSONL line, a Parquet
	// value) so that bad input cannot exhaust memory (default 64 MiB).
	MaxDocBytes int64
	// VocabSize bounds the ids of token files (default GPT-2's 50257).
	VocabSize int
	// Tokenizer defaults to tokenizer.GPT2().
	Tokenizer *tokenizer.Tokenizer
	// NCtx is the window length the plan's shards will be read with
	// (default DefaultNCtx). Only token-file plans use it: a part's hash
	// covers the NCtx-1 tokens past its end that its last window reads, and
	// Windows refuses a longer window for such a part.
	NCtx int
	// Tokenizers is the number of goroutines that tokenize ahead of the
	// Windows callback (tokenizing is the costly part of reading); 1
	// tokenizes inline. Default: GOMAXPROCS, at most 4.
	Tokenizers int
}

// Corpus is an opened corpus spec. It is safe for concurrent use: Windows may
// run for several shards at once.
type Corpus struct {
	spec        Spec
	opts        Options
	src         source
	files       []string
	gen         *generator
	fingerprint string
}

// Window is one record: nCtx consecutive tokens and where the first came from.
type Window struct {
	// Doc is the id of the document holding the first token (see the package doc).
	Doc int64
	// Offset is the first token's index within that document (or stream).
	Offset int64
	// Tokens are the nCtx token ids; the slice is the caller's to keep.
	Tokens []int32
}

// Stats counts what Windows read and produced.
type Stats struct {
	Docs    int64 `json:"docs"`    // documents read (blank lines and null values excluded)
	Bytes   int64 `json:"bytes"`   // source bytes read
	Tokens  int64 `json:"tokens"`  // tokens produced, separators included (= Windows*nCtx + Dropped)
	Windows int64 `json:"windows"` // windows delivered
	Dropped int64 `json:"dropped"` // tokens in partial windows at block (or stream) ends
}

// Add accumulates o into s.
func (s *Stats) Add(o Stats) {
	s.Docs += o.Docs
	s.Bytes += o.Bytes
	s.Tokens += o.Tokens
	s.Windows += o.Windows
	s.Dropped += o.Dropped
}

// Shard is a deterministic piece of a corpus made of whole blocks. It is plain
// data, meant to travel as JSON from the coordinator to a worker.
type Shard struct {
	Index int `json:"index"`
	// Corpus is the fingerprint of the corpus the plan was made for.
	Corpus string `json:"corpus"`
	// Parts are the blocks of the shard, in corpus order.
	Parts []Part `json:"parts"`
	// EstTokens estimates the tokens of the shard (exact for token files).
	EstTokens int64 `json:"est_tokens"`
	// Files are the stamps of the files the shard reads, taken at planning
	// and checked before the shard is read (stamp.go).
	Files []FileStamp `json:"files,omitempty"`
}

// Part is one block of a document corpus, or a range of window starts of a
// token file.
type Part struct {
	// File indexes the corpus's sorted file list (unused for synthetic corpora).
	File int `json:"file"`
	// Start and End delimit the part: file indexes (text), byte offsets
	// (JSONL), row indexes within the file (Parquet), document indexes
	// (synthetic) or token indexes (tokens: the windows starting in the range).
	Start int64 `json:"start"`
	End   int64 `json:"end"`
	// Doc is the id of the document at Start.
	Doc int64 `json:"doc"`
	// Line is the 1-based line number of Start within the file (JSONL).
	Line int64 `json:"line,omitempty"`
	// Hash is the xxhash64 (16 hex digits) of the bytes the block reads,
	// taken at planning and compared before the block is used (stamp.go);
	// empty in plans made before block hashes.
	Hash string `json:"hash,omitempty"`
	// HashEnd (token files) is the end of the hashed tokens: End plus the
	// n_ctx-1 tokens that the last window starting in the part may read,
	// at most the file's end.
	HashEnd int64 `json:"hash_end,omitempty"`
}

// Description identifies a corpus in a dataset manifest.
type Description struct {
	Spec        string   `json:"spec"`
	Kind        Kind     `json:"kind"`
	Field       string   `json:"field,omitempty"`
	Files       []string `json:"files,omitempty"`
	BlockBytes  int64    `json:"block_bytes"`
	Fingerprint string   `json:"fingerprint"`
}

// Open parses spec and finds the corpus files (listing only: nothing is read
// except a Parquet footer, to check the column early).
func Open(ctx context.Context, spec string, opts Options) (*Corpus, error) {
	s, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	return OpenSpec(ctx, s, opts)
}

// OpenSpec is Open for a parsed spec.
func OpenSpec(ctx context.Context, s Spec, opts Options) (*Corpus, error) {
	if opts.BlockBytes <= 0 {
		opts.BlockBytes = DefaultBlockBytes
	}
	if opts.MaxDocBytes <= 0 {
		opts.MaxDocBytes = DefaultMaxDocBytes
	}
	if opts.Tokenizers <= 0 {
		opts.Tokenizers = min(4, runtime.GOMAXPROCS(0))
	}
	if opts.VocabSize <= 0 {
		opts.VocabSize = tokenizer.VocabSize
	}
	if opts.NCtx <= 0 {
		opts.NCtx = DefaultNCtx
	}
	if opts.VocabSize > 1<<16 {
		return nil, fmt.Errorf("corpus: vocabulary size %d does not fit uint16 token files", opts.VocabSize)
	}
	if opts.Tokenizer == nil && s.Kind != Tokens {
		tok, err := tokenizer.GPT2()
		if err != nil {
			return nil, err
		}
		opts.Tokenizer = tok
	}
	c := &Corpus{spec: s, opts: opts}
	if s.Kind == Synthetic {
		g, err := newGenerator(s)
		if err != nil {
			return nil, err
		}
		c.gen = g
	} else {
		pattern := s.Path
		if s.Remote() {
			if opts.Opener == nil {
				return nil, fmt.Errorf("corpus %s: a remote path needs a store opener", s)
			}
			st, key, err := opts.Opener(ctx, s.Path)
			if err != nil {
				return nil, fmt.Errorf("corpus %s: %w", s, err)
			}
			c.src, pattern = storeSource{st}, key
		} else {
			c.src = localSource{}
		}
		files, err := c.src.glob(ctx, pattern)
		if err != nil {
			return nil, err
		}
		c.files = files
		if s.Kind == Parquet {
			if _, err := c.openParquet(ctx, 0); err != nil {
				return nil, err
			}
		}
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%d\n", s, opts.BlockBytes)
	for _, f := range c.files {
		fmt.Fprintf(h, "%s\n", f)
	}
	c.fingerprint = hex.EncodeToString(h.Sum(nil)[:12])
	return c, nil
}

// Spec returns the parsed spec.
func (c *Corpus) Spec() Spec { return c.spec }

// Describe identifies the corpus for a manifest.
func (c *Corpus) Describe() Description {
	d := Description{
		Spec:        c.spec.String(),
		Kind:        c.spec.Kind,
		Field:       c.spec.Field,
		BlockBytes:  c.opts.BlockBytes,
		Fingerprint: c.fingerprint,
	}
	for _, f := range c.files {
		d.Files = append(d.Files, c.src.where(f))
	}
	return d
}

// Plan cuts the corpus into shards of about tokensPerShard estimated tokens,
// made of whole blocks. It reads every block once to record its content
// hash (stamp.go); JSONL files are streamed once for both the line starts
// and the hashes.
// An empty corpus is an error.
func (c *Corpus) Plan(ctx context.Context, tokensPerShard int64) ([]Shard, error) {
	if tokensPerShard <= 0 {
		return nil, fmt.Errorf("corpus plan: tokens per shard must be positive, got %d", tokensPerShard)
	}
	var (
		parts []estPart
		err   error
	)
	switch c.spec.Kind {
	case Text:
		parts, err = c.planText(ctx)
	case JSONL:
		parts, err = c.planJSONL(ctx)
	case Parquet:
		parts, err = c.planParquet(ctx)
	case Tokens:
		parts, err = c.planTokens(ctx, tokensPerShard)
	case Synthetic:
		parts = c.planSynthetic()
	default:
		err = fmt.Errorf("corpus: unknown kind %q", c.spec.Kind)
	}
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("corpus %s is empty", c.spec)
	}
	if err := c.hashParts(ctx, parts); err != nil {
		return nil, err
	}
	var shards []Shard
	for _, p := range parts {
		n := len(shards)
		if n == 0 || shards[n-1].EstTokens >= tokensPerShard {
			shards = append(shards, Shard{Index: n, Corpus: c.fingerprint})
			n++
		}
		shards[n-1].Parts = append(shards[n-1].Parts, p.Part)
		shards[n-1].EstTokens += p.tokens
	}
	if err := c.stampShards(ctx, shards); err != nil {
		return nil, err
	}
	slog.Debug("corpus planned", "corpus", c.spec.String(), "parts", len(parts), "shards", len(shards))
	return shards, nil
}

// estPart is a part with its estimated token count.
type estPart struct {
	Part
	tokens int64
}

// estimateTokens guesses tokens from source bytes (GPT-2 averages about four
// bytes per token on English).
func estimateTokens(bytes int64) int64 { return (bytes + 3) / 4 }

// Windows streams the windows of a shard, in corpus order, to fn. An error
// from fn stops the stream and is returned. The Stats are those of the
// windows delivered so far.
func (c *Corpus) Windows(ctx context.Context, sh Shard, nCtx int, fn func(Window) error) (Stats, error) {
	var st Stats
	if nCtx < 1 {
		return st, fmt.Errorf("corpus: n_ctx must be positive, got %d", nCtx)
	}
	if sh.Corpus != c.fingerprint {
		return st, badData(fmt.Errorf("corpus %s: shard %d was planned for corpus %q, this is %q (different spec, files or block size)", c.spec, sh.Index, sh.Corpus, c.fingerprint))
	}
	if err := c.checkStamps(ctx, sh); err != nil {
		return st, fmt.Errorf("corpus %s: shard %d: %w", c.spec, sh.Index, err)
	}
	for i, p := range sh.Parts {
		if err := c.checkPart(p); err != nil {
			return st, fmt.Errorf("corpus %s: shard %d part %d: %w", c.spec, sh.Index, i, err)
		}
	}
	switch c.spec.Kind {
	case Tokens:
		return st, c.tokenWindows(ctx, sh, nCtx, &st, fn)
	case Text, JSONL, Parquet, Synthetic:
		w := &windower{n: nCtx, fn: fn, st: &st}
		read := map[Kind]func(context.Context, Shard, sink) error{
			Text:      c.readText,
			JSONL:     c.readJSONL,
			Parquet:   c.readParquet,
			Synthetic: c.readSynthetic,
		}[c.spec.Kind]
		return st, c.runDocs(ctx, w, func(ctx context.Context, s sink) error { return read(ctx, sh, s) })
	}
	return st, fmt.Errorf("corpus: unknown kind %q", c.spec.Kind)
}

func (c *Corpus) checkPart(p Part) error {
	if p.Start < 0 || p.End < p.Start || p.Doc < 0 || p.Line < 0 {
		return fmt.Errorf("bad range %+v", p)
	}
	switch c.spec.Kind {
	case Synthetic:
		if p.End > c.gen.docs {
			return fmt.Errorf("documents %d..%d beyond the %d of %s", p.Start, p.End, c.gen.docs, c.spec)
		}
	case Text:
		if p.End > int64(len(c.files)) {
			return fmt.Errorf("files %d..%d beyond the %d files", p.Start, p.End, len(c.files))
		}
	default:
		if p.File < 0 || p.File >= len(c.files) {
			return fmt.Errorf("file index %d beyond the %d files", p.File, len(c.files))
		}
	}
	return nil
}

// windower concatenates the documents of a block and cuts consecutive windows.
type windower struct {
	n       int
	fn      func(Window) error
	st      *Stats
	buf     []int32
	doc     int64 // source of buf[0]
	off     int64
	scratch []int32
}

// add appends one document (its tokens, then <|endoftext|>).
func (w *windower) add(doc int64, ids []int) error {
	w.st.Docs++
	w.scratch = w.scratch[:0]
	for _, id := range ids {
		w.scratch = append(w.scratch, int32(id))
	}
	w.scratch = append(w.scratch, tokenizer.EndOfTextID)
	w.st.Tokens += int64(len(w.scratch))
	toks := w.scratch
	for pos := 0; pos < len(toks); {
		if len(w.buf) == 0 {
			w.doc, w.off = doc, int64(pos)
		}
		take := min(w.n-len(w.buf), len(toks)-pos)
		w.buf = append(w.buf, toks[pos:pos+take]...)
		pos += take
		if len(w.buf) == w.n {
			win := Window{Doc: w.doc, Offset: w.off, Tokens: make([]int32, w.n)}
			copy(win.Tokens, w.buf)
			w.buf = w.buf[:0]
			w.st.Windows++
			if err := w.fn(win); err != nil {
				return err
			}
		}
	}
	return nil
}

// endBlock drops the partial window at the end of a block.
func (w *windower) endBlock() {
	w.st.Dropped += int64(len(w.buf))
	w.buf = w.buf[:0]
}
