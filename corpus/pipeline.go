package corpus

import (
	"context"
	"sync"

	"tdb/model/tokenizer"
)

// sink receives the documents of a shard in order from a reader.
type sink interface {
	// add hands over one document and the source bytes it came from.
	add(doc int64, text string, srcBytes int64) error
	// skip counts source bytes that held no document (blank lines, nulls).
	skip(srcBytes int64) error
	// endBlock ends the current block (its partial window is dropped).
	endBlock() error
}

// inline tokenizes on the reader's goroutine.
type inline struct {
	w   *windower
	tok *tokenizer.Tokenizer
}

func (s inline) add(doc int64, text string, n int64) error {
	s.w.st.Bytes += n
	return s.w.add(doc, s.tok.EncodeOrdinary(text))
}

func (s inline) skip(n int64) error { s.w.st.Bytes += n; return nil }

func (s inline) endBlock() error { s.w.endBlock(); return nil }

// pipeline tokenizes on several goroutines ahead of the consumer and hands
// the results to the windower in document order, so that reading and
// tokenizing overlap with the caller's work in fn.
type pipeline struct {
	ctx   context.Context
	jobs  chan *job
	order chan *job
}

type jobKind uint8

const (
	jobDoc jobKind = iota
	jobSkip
	jobEnd
)

type job struct {
	kind  jobKind
	doc   int64
	text  string
	bytes int64
	ids   []int
	done  chan struct{}
}

func (p *pipeline) send(j *job) error {
	select {
	case p.order <- j:
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
	if j.kind != jobDoc {
		return nil
	}
	select {
	case p.jobs <- j:
		return nil
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}

func (p *pipeline) add(doc int64, text string, n int64) error {
	return p.send(&job{kind: jobDoc, doc: doc, text: text, bytes: n, done: make(chan struct{})})
}

func (p *pipeline) skip(n int64) error { return p.send(&job{kind: jobSkip, bytes: n}) }

func (p *pipeline) endBlock() error { return p.send(&job{kind: jobEnd}) }

// runDocs runs read (a reader of one shard) and feeds w, tokenizing with
// the configured number of goroutines.
func (c *Corpus) runDocs(ctx context.Context, w *windower, read func(context.Context, sink) error) error {
	n := c.opts.Tokenizers
	if n <= 1 {
		return read(ctx, inline{w, c.opts.Tokenizer})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &pipeline{ctx: ctx, jobs: make(chan *job, 4*n), order: make(chan *job, 8*n)}
	var workers sync.WaitGroup
	for range n {
		workers.Go(func() {
			for j := range p.jobs {
				if ctx.Err() == nil {
					j.ids = c.opts.Tokenizer.EncodeOrdinary(j.text)
				}
				close(j.done)
			}
		})
	}
	readErr := make(chan error, 1)
	go func() {
		err := read(ctx, p)
		close(p.order)
		close(p.jobs)
		readErr <- err
	}()
	var err error
	for j := range p.order {
		if err != nil {
			continue // drain so that the reader can finish
		}
		switch j.kind {
		case jobDoc:
			<-j.done
			if err = ctx.Err(); err == nil {
				w.st.Bytes += j.bytes
				err = w.add(j.doc, j.ids)
			}
		case jobSkip:
			w.st.Bytes += j.bytes
		case jobEnd:
			w.endBlock()
		}
		if err != nil {
			cancel()
		}
	}
	rerr := <-readErr
	workers.Wait()
	if err != nil {
		return err
	}
	return rerr
}
