package jobs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"tdb/corpus"
)

// JobStatus is the life-cycle stage of a job.
type JobStatus string

// Job statuses. Done, Failed and Cancelled are final.
const (
	Submitted JobStatus = "submitted"
	Planning  JobStatus = "planning"
	Running   JobStatus = "running"
	Merging   JobStatus = "merging"
	Done      JobStatus = "done"
	Failed    JobStatus = "failed"
	Cancelled JobStatus = "cancelled"
)

// Final reports whether nothing more happens to a job in this status.
func (s JobStatus) Final() bool { return s == Done || s == Failed || s == Cancelled }

// JobState is the job's life cycle record in KV.
type JobState struct {
	ID     string    `json:"id"`
	Status JobStatus `json:"status"`
	Reason string    `json:"reason,omitempty"`
	// Attempt counts submissions of the same spec after a failure or
	// cancellation; it is part of every message id so a retry republishes.
	Attempt int `json:"attempt"`
	// Shards counts the job's tasks (shard ranges × component groups);
	// PlannedTokens the tokens they run (the corpus's tokens once per
	// component group), Tokens the corpus's tokens collated.
	Shards        int        `json:"shards"`
	PlannedTokens int64      `json:"planned_tokens"`
	Tokens        int64      `json:"tokens,omitempty"`
	Submitted     time.Time  `json:"submitted"`
	Updated       time.Time  `json:"updated"`
	Started       *time.Time `json:"started,omitempty"`
	Finished      *time.Time `json:"finished,omitempty"`
	// Store is where the coordinator that planned the job writes the
	// dataset.
	Store string `json:"store,omitempty"`
}

// ShardTask is the body of a shard message.
type ShardTask struct {
	Job     string `json:"job"`
	Attempt int    `json:"attempt"`
	Index   int    `json:"index"`
	// Shard is the task's TaskShards (consecutive corpus shards written
	// to one partial), or in plans from before grouping one corpus.Shard;
	// read it with DecodeTaskShards. Index counts tasks.
	Shard json.RawMessage `json:"shard"`
	// Plan identifies the shard as planned (PlanHash): a done record of an
	// earlier attempt counts only if it was computed from the same plan.
	Plan string `json:"plan,omitempty"`
	// Kind is the job's kind (JobSpec.Kind): empty for a collation shard,
	// KindExplain for an explain task, whose Shard is the task (location,
	// layer and block of components).
	Kind string `json:"kind,omitempty"`
}

// PlanHash identifies a planned shard: the store its partials go to and
// the shard's description (its parts and file stamps).
func PlanHash(store string, shard []byte) string {
	return sha256Hex(append([]byte(store+"\n"), shard...))[:16]
}

// TaskShards is a task's work in a plan: consecutive corpus shards that
// one worker runs into one accumulator per target and one partial.
type TaskShards struct {
	Shards []corpus.Shard `json:"shards"`
	// Targets is the task's component group (MemoryPlan); empty: every
	// target of the job.
	Targets []TargetRef `json:"targets,omitempty"`
}

// GroupShards cuts a shard plan into tasks of n consecutive shards (the
// last may be shorter).
func GroupShards(shards []corpus.Shard, n int) []TaskShards {
	n = max(n, 1)
	var tasks []TaskShards
	for i := 0; i < len(shards); i += n {
		tasks = append(tasks, TaskShards{Shards: shards[i:min(i+n, len(shards))]})
	}
	return tasks
}

// PlanTasks is the task plan of a job: GroupShards for every component
// group (nil groups: one task per shard range, every target). Tasks are
// group-major (task g·R+i is shard range i of group g, R ranges), so every
// target's partials come in shard order.
func PlanTasks(shards []corpus.Shard, n int, groups [][]TargetRef) []TaskShards {
	ranges := GroupShards(shards, n)
	if len(groups) <= 1 {
		return ranges
	}
	tasks := make([]TaskShards, 0, len(groups)*len(ranges))
	for _, g := range groups {
		for _, r := range ranges {
			tasks = append(tasks, TaskShards{Shards: r.Shards, Targets: g})
		}
	}
	return tasks
}

// DecodeTask reads a task: its shards (DecodeTaskShards) and its
// component group (empty: every target).
func DecodeTask(raw json.RawMessage) (TaskShards, error) {
	shards, err := DecodeTaskShards(raw)
	if err != nil {
		return TaskShards{}, err
	}
	var t TaskShards
	_ = json.Unmarshal(raw, &t) // a plain corpus shard has no targets
	return TaskShards{Shards: shards, Targets: t.Targets}, nil
}

// DecodeTaskShards reads a task's shards: a TaskShards object, or a
// single corpus shard (plans written before shards were grouped).
func DecodeTaskShards(raw json.RawMessage) ([]corpus.Shard, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, err
	}
	if _, ok := probe["shards"]; !ok {
		var sh corpus.Shard
		if err := json.Unmarshal(raw, &sh); err != nil {
			return nil, err
		}
		return []corpus.Shard{sh}, nil
	}
	var t TaskShards
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, err
	}
	if len(t.Shards) == 0 {
		return nil, fmt.Errorf("a task without shards")
	}
	return t.Shards, nil
}

// ShardStatus is the state of one shard's record.
type ShardStatus string

// Shard record statuses.
const (
	ShardRunning ShardStatus = "running"
	ShardDone    ShardStatus = "done"
	ShardError   ShardStatus = "error"
)

// PartialRef names one partial result in the store and its checksum.
type PartialRef struct {
	Location string `json:"location"`
	Layer    int    `json:"layer"`
	Key      string `json:"key"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
}

// ShardRecord is what a worker reports about a shard in KV.
type ShardRecord struct {
	Job      string      `json:"job"`
	Attempt  int         `json:"attempt"`
	Index    int         `json:"index"`
	Status   ShardStatus `json:"status"`
	Delivery int         `json:"delivery"`
	Worker   string      `json:"worker"`
	// Tokens and Windows are a collation shard's; an explain task
	// (ShardTask.Kind) reports in Tokens the components it went through
	// (explained now or already explained with the method) and in Windows
	// those it explained now.
	Tokens   int64        `json:"tokens"`
	Windows  int64        `json:"windows"`
	Partials []PartialRef `json:"partials,omitempty"`
	Error    string       `json:"error,omitempty"`
	// Final marks an error on the last allowed delivery: the job fails.
	Final   bool      `json:"final,omitempty"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	Seconds float64   `json:"seconds,omitempty"`
	// Plan is the task's PlanHash.
	Plan string `json:"plan,omitempty"`
	// Merge is a done merge task's result (KindMerge).
	Merge *MergeResult `json:"merge,omitempty"`
}

// CheckPartial verifies a partial's bytes against its record.
func CheckPartial(b []byte, ref PartialRef) error {
	return ref.check(int64(len(b)), sha256Hex(b))
}

// VerifyPartial reads a partial from r (a stream, so no copy of the whole
// partial is held) and checks its size and sha256 against ref.
func VerifyPartial(r io.Reader, ref PartialRef) error {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return fmt.Errorf("reading partial %s: %w", ref.Key, err)
	}
	return ref.check(n, hex.EncodeToString(h.Sum(nil)))
}

func (ref PartialRef) check(size int64, sum string) error {
	if size != ref.Size || sum != ref.SHA256 {
		return fmt.Errorf("partial %s does not match its record (%d bytes, want %d, or a different sha256)", ref.Key, size, ref.Size)
	}
	return nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
