package corpus_test

import (
	"context"
	"fmt"

	"tdb/corpus"
)

// A coordinator plans shards; each worker opens the same spec and reads its
// shard. The windows do not depend on the shard size.
func Example() {
	ctx := context.Background()
	c, err := corpus.Open(ctx, "synthetic:ioi?docs=1000&seed=1", corpus.Options{})
	if err != nil {
		panic(err)
	}
	shards, err := c.Plan(ctx, 5000)
	if err != nil {
		panic(err)
	}
	var total corpus.Stats
	var first corpus.Window
	for _, sh := range shards {
		st, err := c.Windows(ctx, sh, corpus.DefaultNCtx, func(w corpus.Window) error {
			if first.Tokens == nil {
				first = w
			}
			return nil
		})
		if err != nil {
			panic(err)
		}
		total.Add(st)
	}
	fmt.Printf("%d shards, %d docs, %d windows, %d tokens dropped\n", len(shards), total.Docs, total.Windows, total.Dropped)
	fmt.Printf("first window: doc %d, offset %d, %d tokens\n", first.Doc, first.Offset, len(first.Tokens))
	// Output:
	// 2 shards, 1000 docs, 296 windows, 26 tokens dropped
	// first window: doc 0, offset 0, 64 tokens
}
