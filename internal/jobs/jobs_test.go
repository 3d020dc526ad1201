package jobs

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"tdb/collate"
	"tdb/corpus"
)

func TestKeysAndIDs(t *testing.T) {
	if got := JobKeys("j-1"); got != "jobs.j-1.>" {
		t.Errorf("JobKeys = %q", got)
	}
	if got := ShardKey("j-1", 4); got != "jobs.j-1.shard.4" {
		t.Errorf("ShardKey = %q", got)
	}
	if got := PlanKey("j-1"); got != "jobs/j-1/plan.json" {
		t.Errorf("PlanKey = %q", got)
	}
	if got := PartialKey("j-1", "mlp.post_act", 3, 12); got != "jobs/j-1/partials/mlp.post_act/layer=3/shard-000012.bin" {
		t.Errorf("PartialKey = %q", got)
	}
	for key, want := range map[string]int{"jobs.j-1.shard.12": 12, "jobs.j-1.shard.x": -1, "jobs.j-1.state": -1, "jobs.a.b.shard.1": -1} {
		job, n, ok := ParseShardKey(key)
		if (want >= 0) != ok || (ok && (n != want || job != "j-1")) {
			t.Errorf("ParseShardKey(%q) = %q %d %v", key, job, n, ok)
		}
	}
	for id, ok := range map[string]bool{"j-abc": true, "my_job-2": true, "": false, "Job": false, "a.b": false, "a b": false, "-x": false, strings.Repeat("a", 65): false} {
		if err := ValidateJobID(id); (err == nil) != ok {
			t.Errorf("ValidateJobID(%q) = %v", id, err)
		}
	}
	a := JobSpec{Model: "gpt2", Corpus: "c", Locations: []string{"mlp.post_act"}}
	b := a
	b.ID = "other"
	if a.DefaultID() != b.DefaultID() || !strings.HasPrefix(a.DefaultID(), "j-") || len(a.DefaultID()) != 14 {
		t.Errorf("DefaultID %q vs %q", a.DefaultID(), b.DefaultID())
	}
	b.TopK = 1
	if a.DefaultID() == b.DefaultID() {
		t.Error("different specs share an id")
	}
}

func TestCheckPartial(t *testing.T) {
	b := []byte("partial bytes")
	ref := PartialRef{Key: "k", Size: int64(len(b)), SHA256: "dd9ea8ca3d3e5c33ba10a1bc0a01cf02aeb5c2fb1e45c8e3a1c1ff62e0bd3c69"}
	if err := CheckPartial(b, ref); err == nil {
		t.Fatal("a wrong checksum passed")
	}
	if err := VerifyPartial(bytes.NewReader(b), ref); err == nil {
		t.Fatal("a wrong checksum passed VerifyPartial")
	}
	ref.SHA256 = sha256Hex(b)
	if err := CheckPartial(b, ref); err != nil {
		t.Fatal(err)
	}
	if err := VerifyPartial(bytes.NewReader(b), ref); err != nil {
		t.Fatal(err)
	}
	if err := CheckPartial(b[:3], ref); err == nil || !strings.Contains(err.Error(), "partial k") {
		t.Fatalf("a truncated partial: %v", err)
	}
	if err := VerifyPartial(bytes.NewReader(b[:3]), ref); err == nil {
		t.Fatal("a truncated partial passed VerifyPartial")
	}
}

func TestDefaults(t *testing.T) {
	d, c := DefaultSpec(), collate.DefaultConfig()
	if d.TopK != c.TopK || d.RandomK != c.RandomK || d.QuantileBuckets != c.QuantileBuckets || d.PerBucket != c.PerBucket ||
		d.NCtx != DefaultNCtx || d.BatchSize != DefaultBatchSize || d.TokensPerShard != DefaultTokensPerShard {
		t.Fatalf("DefaultSpec %+v, collate defaults %+v", d, c)
	}
	if got := d.CollateConfig(); got != c {
		t.Fatalf("the default spec collates with %+v, want collate.DefaultConfig %+v", got, c)
	}
	big := d
	big.QuantileBuckets, big.PerBucket = 20, 10
	if got := big.CollateConfig(); got.QuantilePool != 600 || got.Validate() != nil {
		t.Fatalf("pool for 20 buckets of 10: %+v", got)
	}
}

func TestDatasetName(t *testing.T) {
	s := JobSpec{Model: "/models/gpt2/", Corpus: "synthetic:ioi?docs=5", Locations: []string{"mlp.post_act"}}
	name := s.DatasetName()
	want := "gpt2_synthetic-ioi_" + strings.TrimPrefix(s.DefaultID(), "j-")
	if name != want || ValidateDatasetName(name) != nil {
		t.Fatalf("DatasetName = %q, want %q", name, want)
	}
	s.Model = "random:tiny"
	if name := s.DatasetName(); !strings.HasPrefix(name, "random-tiny_synthetic-ioi_") {
		t.Fatalf("DatasetName of a random model = %q", name)
	}
}

func TestNormalize(t *testing.T) {
	base := JobSpec{Dataset: "d", Model: "gpt2", Corpus: "synthetic:ioi", Locations: []string{"mlp.post_act"}}
	tests := []struct {
		name string
		edit func(*JobSpec)
		want string // error substring, "" for success
	}{
		{"ok", func(*JobSpec) {}, ""},
		{"no model", func(s *JobSpec) { s.Model = " " }, "no model"},
		{"no corpus", func(s *JobSpec) { s.Corpus = "" }, "no corpus"},
		{"no locations", func(s *JobSpec) { s.Locations = nil }, "no locations"},
		{"duplicate location", func(s *JobSpec) { s.Locations = []string{"a", "a"} }, "twice"},
		{"bad dataset", func(s *JobSpec) { s.Dataset = "a/b" }, "dataset name"},
		{"bad job id", func(s *JobSpec) { s.ID = "Job 1" }, "job id"},
		{"tiny shards", func(s *JobSpec) { s.TokensPerShard = 10 }, "less than one window"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			s.Locations = append([]string(nil), base.Locations...)
			tc.edit(&s)
			got, err := Normalize(s)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got.NCtx != DefaultNCtx || got.ID != got.DefaultID() || !strings.HasPrefix(got.ID, "j-") {
					t.Fatalf("normalized %+v", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSubjects(t *testing.T) {
	if got := Subject("j-1", 7); got != "tdb.shards.j-1.7" {
		t.Errorf("Subject = %q", got)
	}
	if got := JobSubjects("j-1"); got != "tdb.shards.j-1.>" {
		t.Errorf("JobSubjects = %q", got)
	}
	if got := MsgID("j-1", 2, 7); got != "j-1/2/7" {
		t.Errorf("MsgID = %q", got)
	}
}

func TestGroupShards(t *testing.T) {
	var shards []corpus.Shard
	for i := range 7 {
		shards = append(shards, corpus.Shard{Index: i, Corpus: "c"})
	}
	tasks := GroupShards(shards, 3)
	if len(tasks) != 3 || len(tasks[0].Shards) != 3 || len(tasks[2].Shards) != 1 || tasks[1].Shards[0].Index != 3 {
		t.Fatalf("GroupShards(7, 3) = %+v", tasks)
	}
	raw, _ := json.Marshal(tasks[1])
	got, err := DecodeTaskShards(raw)
	if err != nil || len(got) != 3 || got[2].Index != 5 {
		t.Fatalf("DecodeTaskShards(task) = %+v, %v", got, err)
	}
	// A plan written before grouping holds single shards.
	raw, _ = json.Marshal(shards[4])
	if got, err := DecodeTaskShards(raw); err != nil || len(got) != 1 || got[0].Index != 4 {
		t.Fatalf("DecodeTaskShards(shard) = %+v, %v", got, err)
	}
	for _, bad := range []string{`{"shards":[]}`, `[1]`, `nope`} {
		if _, err := DecodeTaskShards(json.RawMessage(bad)); err == nil {
			t.Errorf("DecodeTaskShards(%s) succeeded", bad)
		}
	}
	s := JobSpec{}
	for n, want := range map[int]int{1: 1, 64: 1, 128: 2, 640: 10, 5000: 16} {
		if got := s.PartialGroup(n); got != want {
			t.Errorf("PartialGroup(%d) = %d, want %d", n, got, want)
		}
	}
	s.ShardsPerPartial = 3
	if s.PartialGroup(5000) != 3 || s.DefaultID() != (JobSpec{}).DefaultID() {
		t.Error("ShardsPerPartial is not honoured or changes the job id")
	}
	if _, err := Normalize(JobSpec{Dataset: "d", Model: "m", Corpus: "c", Locations: []string{"x"}, ShardsPerPartial: -1}); err == nil {
		t.Error("a negative group size passed")
	}
}

func TestNormalizeExplainSpec(t *testing.T) {
	spec := func(e ExplainSpec) JobSpec {
		return JobSpec{Kind: KindExplain, Dataset: "demo", Store: "mem://", Explain: &e}
	}
	s, err := Normalize(spec(ExplainSpec{Scores: []string{"simulation"}}))
	if err != nil || s.Explain.Method != "builtin" || s.Explain.Judge != "builtin" || s.ID == "" {
		t.Fatalf("%+v %v", s, err)
	}
	llm, err := Normalize(spec(ExplainSpec{Method: "llm", LLMURL: "http://x/v1", LLMModel: "m"}))
	if err != nil || llm.Explain.Judge != "llm" || llm.ID == s.ID {
		t.Fatalf("llm: %+v %v (ids %s %s)", llm.Explain, err, llm.ID, s.ID)
	}
	again, _ := Normalize(spec(ExplainSpec{Scores: []string{"simulation"}}))
	if again.ID != s.ID {
		t.Fatalf("the same spec has ids %s and %s", again.ID, s.ID)
	}
	for _, bad := range []JobSpec{
		spec(ExplainSpec{Method: "magic"}),
		spec(ExplainSpec{Judge: "magic"}),
		spec(ExplainSpec{Method: "llm"}),
		spec(ExplainSpec{Scores: []string{"accuracy"}}),
		spec(ExplainSpec{Layers: []int{-1}}),
		{Kind: KindExplain, Dataset: "demo"},
		{Kind: KindExplain, Dataset: "a/b", Explain: &ExplainSpec{}},
		{Kind: "other", Dataset: "demo"},
	} {
		if _, err := Normalize(bad); err == nil {
			t.Errorf("%+v (explain %+v): no error", bad, bad.Explain)
		}
	}
	if got := TaskSubject("j-1", KindExplain, 3); got != "tdb.shards.j-1.explain.3" || TaskSubject("j-1", "", 3) != Subject("j-1", 3) {
		t.Fatalf("subjects: %s", got)
	}
}
