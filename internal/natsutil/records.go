package natsutil

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// JobSpec is what a job computes. Its canonical JSON (without ID) hashes to
// the default job id, so submitting the same spec twice names the same job.
type JobSpec struct {
	ID      string `json:"id"`
	Dataset string `json:"dataset"`
	// Model is a hub name, a local folder, or random:<preset>.
	Model  string `json:"model"`
	Corpus string `json:"corpus"`
	// Locations are collated locations (mlp.post_act, attn.heads, or any
	// per-token model location); Layers restricts the layers (empty: all).
	Locations    []string `json:"locations"`
	Layers       []int    `json:"layers,omitempty"`
	Autoencoders []string `json:"autoencoders,omitempty"`
	NCtx         int      `json:"n_ctx"`
	TopK         int      `json:"top_k"`
	RandomK      int      `json:"random_k"`
	Buckets      int      `json:"quantile_buckets"`
	PerBucket    int      `json:"per_bucket"`
	Seed         uint64   `json:"seed"`
	// TokensPerShard is the target size of a shard; BatchSize the windows
	// per forward pass (part of the spec so every worker computes alike).
	TokensPerShard int64 `json:"tokens_per_shard"`
	BatchSize      int   `json:"batch_size"`
	// BlockBytes is the corpus block size (0: the corpus default); it
	// decides the windows, so it is part of the job.
	BlockBytes int64 `json:"block_bytes,omitempty"`
}

var jobIDRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// ValidateJobID checks that id can be a NATS subject token and a store key
// segment.
func ValidateJobID(id string) error {
	if !jobIDRe.MatchString(id) {
		return fmt.Errorf("job id %q: want 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit", id)
	}
	return nil
}

// DefaultID is "j-" and the first 12 hex digits of the sha256 of the spec's
// JSON without its id.
func (s JobSpec) DefaultID() string {
	s.ID = ""
	b, _ := json.Marshal(s)
	return "j-" + sha256Hex(b)[:12]
}

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
	Attempt       int        `json:"attempt"`
	Shards        int        `json:"shards"`
	PlannedTokens int64      `json:"planned_tokens"`
	Tokens        int64      `json:"tokens,omitempty"`
	Submitted     time.Time  `json:"submitted"`
	Updated       time.Time  `json:"updated"`
	Started       *time.Time `json:"started,omitempty"`
	Finished      *time.Time `json:"finished,omitempty"`
}

// ShardTask is the body of a shard message.
type ShardTask struct {
	Job     string `json:"job"`
	Attempt int    `json:"attempt"`
	Index   int    `json:"index"`
	// Shard is the corpus package's description of the shard.
	Shard json.RawMessage `json:"shard"`
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
	Job      string       `json:"job"`
	Attempt  int          `json:"attempt"`
	Index    int          `json:"index"`
	Status   ShardStatus  `json:"status"`
	Delivery int          `json:"delivery"`
	Worker   string       `json:"worker"`
	Tokens   int64        `json:"tokens"`
	Windows  int64        `json:"windows"`
	Partials []PartialRef `json:"partials,omitempty"`
	Error    string       `json:"error,omitempty"`
	// Final marks an error on the last allowed delivery: the job fails.
	Final   bool      `json:"final,omitempty"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	Seconds float64   `json:"seconds,omitempty"`
}

// KV keys of a job.
func SpecKey(job string) string             { return "jobs." + job + ".spec" }
func StateKey(job string) string            { return "jobs." + job + ".state" }
func ShardKey(job string, shard int) string { return "jobs." + job + ".shard." + strconv.Itoa(shard) }
func ShardKeys(job string) string           { return "jobs." + job + ".shard.*" }

// StateKeys matches the state key of every job.
const StateKeys = "jobs.*.state"

// ParseShardKey returns the job and shard of a shard key.
func ParseShardKey(key string) (job string, shard int, ok bool) {
	parts := strings.Split(key, ".")
	if len(parts) != 4 || parts[0] != "jobs" || parts[2] != "shard" {
		return "", 0, false
	}
	n, err := strconv.Atoi(parts[3])
	if err != nil {
		return "", 0, false
	}
	return parts[1], n, true
}

// PartialKey is the deterministic store key of one shard's partial for one
// location and layer: a recomputed shard overwrites the same blob.
func PartialKey(job, location string, layer, shard int) string {
	return fmt.Sprintf("jobs/%s/partials/%s/layer=%d/shard-%06d.bin", job, location, layer, shard)
}

// PlanKey is the store key of a job's shard plan.
func PlanKey(job string) string { return "jobs/" + job + "/plan.json" }

// GetJSON reads a KV value into v and returns its revision. A missing key
// gives an error wrapping jetstream.ErrKeyNotFound.
func GetJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) (uint64, error) {
	e, err := kv.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", key, err)
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return 0, fmt.Errorf("decoding %s: %w", key, err)
	}
	return e.Revision(), nil
}

// PutJSON writes v as JSON under key.
func PutJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", key, err)
	}
	if _, err := kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("writing %s: %w", key, err)
	}
	return nil
}

// UpdateState applies fn to a job's state with compare-and-set, retrying on
// a concurrent change, so a cancel and a coordinator's progress never
// overwrite each other. fn returns false to leave the state as it is.
func UpdateState(ctx context.Context, kv jetstream.KeyValue, job string, fn func(*JobState) bool) (JobState, error) {
	for range 100 {
		var st JobState
		rev, err := GetJSON(ctx, kv, StateKey(job), &st)
		if err != nil {
			return JobState{}, err
		}
		if !fn(&st) {
			return st, nil
		}
		st.Updated = time.Now().UTC()
		b, err := json.Marshal(st)
		if err != nil {
			return JobState{}, err
		}
		_, err = kv.Update(ctx, StateKey(job), b, rev)
		if err == nil {
			return st, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return JobState{}, fmt.Errorf("updating state of job %s: %w", job, err)
		}
	}
	return JobState{}, fmt.Errorf("updating state of job %s: too many concurrent changes", job)
}

// CheckPartial verifies a partial's bytes against its record.
func CheckPartial(b []byte, ref PartialRef) error {
	if int64(len(b)) != ref.Size || sha256Hex(b) != ref.SHA256 {
		return fmt.Errorf("partial %s does not match its record (%d bytes, want %d, or a different sha256)", ref.Key, len(b), ref.Size)
	}
	return nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
