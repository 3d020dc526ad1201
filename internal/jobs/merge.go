package jobs

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"tdb/collate"
)

// KindMerge is the ShardTask.Kind of a merge task: once every shard of a
// collation job is done, the coordinator publishes one per location and
// layer on the same stream, and any worker merges that layer's partials
// and writes its dataset files (collate.MergeLayer). Its record lives
// under MergeKey, so shard records and merge records never mix.
const KindMerge = "merge"

// MergeTask is the body (ShardTask.Shard) of a merge task: one location
// and layer, with the partials to fold, in shard order, as their shards
// (or earlier merge tasks) recorded them (a worker checks each against its
// size and sha256). Merges form a tree: a task with an Output folds a
// group of partials into one partial at that key (MergePartialKey); the
// task without one, last for its layer, writes the layer's dataset files.
type MergeTask struct {
	Dataset  string       `json:"dataset"`
	Location string       `json:"location"`
	Layer    int          `json:"layer"`
	Partials []PartialRef `json:"partials"`
	Output   string       `json:"output,omitempty"`
}

// MergeResult is what a done merge task reports in its record: what the
// manifest says about the layer it wrote.
type MergeResult struct {
	// LayerResult is the final merge's (zero for an intermediate one).
	collate.LayerResult
	// Partials counts the partials merged.
	Partials int `json:"partials"`
	// Output is the partial an intermediate merge wrote.
	Output *PartialRef `json:"output,omitempty"`
}

// MergePartialKey is the deterministic store key of the partial written by
// intermediate merge i of a location and layer at tree level level.
func MergePartialKey(job, location string, layer, level, i int) string {
	return fmt.Sprintf("jobs/%s/merges/%s/layer=%d/level-%d-%06d.bin", job, location, layer, level, i)
}

// MergeKey is the KV key of one merge task's record.
func MergeKey(job string, task int) string { return "jobs." + job + ".merge." + strconv.Itoa(task) }

// ParseTaskKey returns the job, kind (KindMerge, or "" for a shard or an
// explain task) and index of a task record's key.
func ParseTaskKey(key string) (job, kind string, task int, ok bool) {
	parts := strings.Split(key, ".")
	if len(parts) != 4 || parts[0] != "jobs" || (parts[2] != "shard" && parts[2] != "merge") {
		return "", "", 0, false
	}
	n, err := strconv.Atoi(parts[3])
	if err != nil {
		return "", "", 0, false
	}
	if parts[2] == "merge" {
		kind = KindMerge
	}
	return parts[1], kind, n, true
}

// TaskKey is the KV key of a task's record: MergeKey for a merge task,
// ShardKey for a shard or an explain task.
func TaskKey(job, kind string, task int) string {
	if kind == KindMerge {
		return MergeKey(job, task)
	}
	return ShardKey(job, task)
}

// TaskMsgID is the de-duplication id of a task message: MsgID for a shard
// or an explain task; merge tasks have their own, or merge task i would be
// taken for shard i of the same attempt.
func TaskMsgID(job, kind string, attempt, task int) string {
	if kind == KindMerge {
		return fmt.Sprintf("%s/%d/merge/%d", job, attempt, task)
	}
	return MsgID(job, attempt, task)
}

// DecodeMergeTask decodes a merge task's body.
func DecodeMergeTask(b json.RawMessage) (MergeTask, error) {
	var t MergeTask
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("decoding merge task: %w", err)
	}
	if len(t.Partials) == 0 || t.Location == "" || t.Dataset == "" {
		return t, fmt.Errorf("merge task of %q layer %d: no partials or no dataset", t.Location, t.Layer)
	}
	return t, nil
}
