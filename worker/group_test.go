package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"tdb/collate"
	"tdb/corpus"
	"tdb/internal/jobs"
	"tdb/model"
)

// TestTaskOfShardsMatchesShards: a task that runs consecutive shards into
// one accumulator per target merges to the same Parquet bytes as the
// shards' own partials, for neurons and heads (the partial size is
// measured by BenchmarkShardGPT2Small: these shards are too short to fill
// the pools).
func TestTaskOfShardsMatchesShards(t *testing.T) {
	ctx := context.Background()
	m, err := model.NewRandom(testCfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	spec := jobs.JobSpec{Model: "random:test", Corpus: "synthetic:ioi?docs=150", Locations: []string{"mlp.post_act", "attn.heads"},
		NCtx: 16, TopK: 4, RandomK: 3, QuantileBuckets: 2, PerBucket: 2, BatchSize: 3, BlockBytes: 1024}
	job, err := NewJob(ctx, spec, m, corpus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	shards, err := job.Corpus.Plan(ctx, 300)
	if err != nil {
		t.Fatal(err)
	}
	if len(shards) < 4 {
		t.Fatalf("only %d shards", len(shards))
	}
	shards = shards[:4]
	// Every shard alone, merged in order.
	var merged []*collate.LayerAccumulator
	for _, sh := range shards {
		res, err := job.Run(ctx, sh, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range res.Accumulators {
			p := decodedPartial(t, a)
			if len(merged) <= i {
				merged = append(merged, p)
			} else if err := merged[i].Merge(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The task's raw shards as the plan stores them.
	raw, _ := json.Marshal(jobs.GroupShards(shards, 4)[0])
	got, err := jobs.DecodeTaskShards(raw)
	if err != nil || len(got) != 4 {
		t.Fatalf("DecodeTaskShards: %d shards, %v", len(got), err)
	}
	res, err := job.RunShards(ctx, got, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range res.Accumulators {
		p := decodedPartial(t, a)
		var want, have bytes.Buffer
		if err := merged[i].WriteRecords(&want, 8); err != nil {
			t.Fatal(err)
		}
		if err := merged[i].WriteStats(&want, 8); err != nil {
			t.Fatal(err)
		}
		if err := p.WriteRecords(&have, 8); err != nil {
			t.Fatal(err)
		}
		if err := p.WriteStats(&have, 8); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want.Bytes(), have.Bytes()) {
			t.Errorf("%s layer %d: the task's files differ from the merged shards'", a.Location(), a.Layer())
		}
	}
}

// partialBytes is a's partial, as a worker stores it.
func partialBytes(t *testing.T, a *collate.LayerAccumulator) []byte {
	t.Helper()
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodedPartial is a's partial read back, as the merge reads it.
func decodedPartial(t *testing.T, a *collate.LayerAccumulator) *collate.LayerAccumulator {
	t.Helper()
	p, err := collate.DecodePartial(partialBytes(t, a))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
