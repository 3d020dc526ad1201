package jobs

import (
	"bytes"
	"strings"
	"testing"

	"tdb/collate"
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
