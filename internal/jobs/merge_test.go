package jobs

import (
	"encoding/json"
	"testing"
)

func TestMergeTaskKeysAndSubjects(t *testing.T) {
	if got := TaskKey("j", KindMerge, 3); got != "jobs.j.merge.3" {
		t.Errorf("merge key %q", got)
	}
	if got := TaskKey("j", KindExplain, 3); got != ShardKey("j", 3) {
		t.Errorf("explain key %q", got)
	}
	for key, want := range map[string]struct {
		kind string
		i    int
		ok   bool
	}{
		"jobs.j.merge.7": {KindMerge, 7, true}, "jobs.j.shard.2": {"", 2, true},
		"jobs.j.state": {"", 0, false}, "jobs.j.merge.x": {"", 0, false}, "jobs.j.spec.1": {"", 0, false},
	} {
		job, kind, i, ok := ParseTaskKey(key)
		if ok != want.ok || kind != want.kind || i != want.i || (ok && job != "j") {
			t.Errorf("ParseTaskKey(%q) = %q %q %d %v, want %+v", key, job, kind, i, ok, want)
		}
	}
	if TaskMsgID("j", KindMerge, 1, 0) == TaskMsgID("j", "", 1, 0) {
		t.Error("merge task 0 and shard 0 share a message id")
	}
	if got := TaskSubject("j", KindMerge, 4); got != "tdb.shards.j.merge.4" {
		t.Errorf("merge subject %q", got)
	}
}

func TestDecodeMergeTask(t *testing.T) {
	b, _ := json.Marshal(MergeTask{Dataset: "d", Location: "mlp.post_act", Layer: 1, Partials: []PartialRef{{Key: "k"}}, Output: "o"})
	got, err := DecodeMergeTask(b)
	if err != nil || got.Layer != 1 || got.Output != "o" || len(got.Partials) != 1 {
		t.Fatalf("%+v, %v", got, err)
	}
	for _, bad := range []string{`{}`, `{"dataset":"d","location":"x","layer":0,"partials":[]}`, `[`} {
		if _, err := DecodeMergeTask(json.RawMessage(bad)); err == nil {
			t.Errorf("%s decoded", bad)
		}
	}
}
