package jobs

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"tdb/collate"
	"tdb/corpus"
	"tdb/store"
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
	Locations       []string `json:"locations"`
	Layers          []int    `json:"layers,omitempty"`
	Autoencoders    []string `json:"autoencoders,omitempty"`
	NCtx            int      `json:"n_ctx"`
	TopK            int      `json:"top_k"`
	RandomK         int      `json:"random_k"`
	QuantileBuckets int      `json:"quantile_buckets"`
	PerBucket       int      `json:"per_bucket"`
	Seed            uint64   `json:"seed"`
	// TokensPerShard is the target size of a shard; BatchSize the windows
	// per forward pass (part of the spec so every worker computes alike).
	TokensPerShard int64 `json:"tokens_per_shard"`
	BatchSize      int   `json:"batch_size"`
	// BlockBytes is the corpus block size (0: the corpus default); it
	// decides the windows, so it is part of the job.
	BlockBytes int64 `json:"block_bytes,omitempty"`
	// ShardsPerPartial groups consecutive shards into one task: a worker
	// runs them into one accumulator per target and writes one partial
	// for the group (0: AutoShardsPerPartial). It changes no byte of the
	// dataset (the accumulator closes every shard's sums as its own
	// partial would), only the partial bytes per token and the work a
	// retry redoes, so it is not part of the default id.
	ShardsPerPartial int `json:"shards_per_partial,omitempty"`
	// WorkerMemory is the memory budget of one worker in bytes (0: no
	// budget): the plan splits the targets into the fewest component
	// groups whose estimated memory fits it (PlanGroups), each task then
	// covering a range of shards × one group. Like ShardsPerPartial it
	// changes no byte of the dataset, so it is not part of the default id.
	WorkerMemory int64 `json:"worker_memory,omitempty"`
	// Sizing is the model's and the targets' sizes as the submitter
	// resolved them, for PlanGroups (nil when they could not be known:
	// then every target is in one group). Derived from the model and the
	// autoencoders, so not part of the default id either.
	Sizing *Sizing `json:"sizing,omitempty"`
	// Store is the store the dataset goes to (as store.Store.String()
	// says); a coordinator writing elsewhere refuses the job. Part of the
	// job's identity, so the same command against another store is
	// another job.
	Store string `json:"store,omitempty"`
	// CorpusStamp is corpus.Corpus.ContentStamp at submission (file names,
	// sizes, modification times): a changed corpus is another job.
	CorpusStamp string `json:"corpus_stamp,omitempty"`
	// FilesStamp is LocalFilesStamp of the model folder and autoencoder
	// files at submission: new weights are another job.
	FilesStamp string `json:"files_stamp,omitempty"`
	// Files are the local model and autoencoder files at submission, with
	// sizes and sampled content hashes (DigestFiles): workers check the
	// files they load against them before computing (VerifyFiles).
	Files []FileDigest `json:"files,omitempty"`
	// Kind is the job's kind: empty for a collation, KindExplain for an
	// explain job over the existing dataset Dataset (then Explain says
	// what it computes and the collation fields are unused).
	Kind    string       `json:"kind,omitempty"`
	Explain *ExplainSpec `json:"explain,omitempty"`
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
	s.ShardsPerPartial, s.WorkerMemory, s.Sizing = 0, 0, nil
	b, _ := json.Marshal(s)
	return "j-" + sha256Hex(b)[:12]
}

// Defaults of a job spec. The collation settings (top-k, random-k,
// quantile buckets, records per bucket) default to collate.DefaultConfig,
// the window length to corpus.DefaultNCtx; DefaultSpec gathers them all.
const (
	DefaultNCtx = corpus.DefaultNCtx
	// DefaultTokensPerShard: a shard's partials are bounded by the
	// components (top-k and pool records), not by its tokens, so a longer
	// shard writes fewer partial bytes per token (13 KB/token for all
	// GPT-2 small neurons at this size, 26 at 1<<16) and keeps fewer
	// records per token; it costs no more memory, only more work to redo
	// when a worker dies (about 2.5 minutes of a 2-core CPU for GPT-2 small).
	DefaultTokensPerShard = 1 << 17
	// DefaultBatchSize is the windows per forward pass.
	DefaultBatchSize = 8
	// DefaultShardsPerPartial is the group size of a large job: a partial
	// for 16 default shards (2^21 tokens) is about as big as one for a
	// single shard, so partial bytes per token drop 16x.
	DefaultShardsPerPartial = 16
	// MinTasks is how many tasks the automatic grouping keeps, at least,
	// for the workers to share (a small job keeps one shard per task).
	MinTasks = 64
	// MaxShardsPerPartial bounds a task's size.
	MaxShardsPerPartial = 256
)

// PartialGroup is the number of consecutive shards per task (and per
// partial) of a plan of n shards: the spec's ShardsPerPartial, or
// automatically DefaultShardsPerPartial once the plan has enough shards to
// keep MinTasks tasks, fewer below that, and 1 for at most MinTasks shards.
// The plan stores the grouping, so a redelivered task covers the same
// shards and recomputes the same partial.
func (s JobSpec) PartialGroup(n int) int {
	if s.ShardsPerPartial > 0 {
		return s.ShardsPerPartial
	}
	return max(1, min(DefaultShardsPerPartial, n/MinTasks))
}

// DefaultSpec is a spec with every default filled in and nothing else (no
// model, corpus, locations or names): the defaults of tdb collate's flags.
func DefaultSpec() JobSpec {
	c := collate.DefaultConfig()
	return JobSpec{
		NCtx: DefaultNCtx, TopK: c.TopK, RandomK: c.RandomK, QuantileBuckets: c.QuantileBuckets, PerBucket: c.PerBucket,
		Seed: c.Seed, TokensPerShard: DefaultTokensPerShard, BatchSize: DefaultBatchSize,
	}
}

// Normalize fills the defaults of n_ctx, tokens per shard and batch size
// (zero sample sizes mean none, not the default) and checks the parts of a
// spec that need no model or corpus. It sets ID to the default id when
// empty.
func Normalize(s JobSpec) (JobSpec, error) {
	switch s.Kind {
	case "":
	case KindExplain:
		return normalizeExplain(s)
	default:
		return s, fmt.Errorf("job spec: unknown job kind %q", s.Kind)
	}
	if s.NCtx == 0 {
		s.NCtx = DefaultNCtx
	}
	if s.TokensPerShard == 0 {
		s.TokensPerShard = DefaultTokensPerShard
	}
	if s.BatchSize == 0 {
		s.BatchSize = DefaultBatchSize
	}
	switch {
	case strings.TrimSpace(s.Model) == "":
		return s, fmt.Errorf("job spec: no model")
	case strings.TrimSpace(s.Corpus) == "":
		return s, fmt.Errorf("job spec: no corpus")
	case len(s.Locations) == 0 && len(s.Autoencoders) == 0:
		return s, fmt.Errorf("job spec: no locations")
	case s.NCtx < 1:
		return s, fmt.Errorf("job spec: n_ctx %d must be positive", s.NCtx)
	case s.TopK < 0 || s.RandomK < 0 || s.QuantileBuckets < 0 || s.PerBucket < 0:
		return s, fmt.Errorf("job spec: sample sizes must not be negative")
	case s.TokensPerShard < int64(s.NCtx):
		return s, fmt.Errorf("job spec: tokens per shard %d is less than one window of %d", s.TokensPerShard, s.NCtx)
	case s.BatchSize < 1:
		return s, fmt.Errorf("job spec: batch size %d must be positive", s.BatchSize)
	case s.WorkerMemory < 0:
		return s, fmt.Errorf("job spec: worker memory %d must not be negative", s.WorkerMemory)
	case s.ShardsPerPartial < 0 || s.ShardsPerPartial > MaxShardsPerPartial:
		return s, fmt.Errorf("job spec: shards per partial %d out of range [0, %d]", s.ShardsPerPartial, MaxShardsPerPartial)
	}
	for i, l := range s.Locations {
		s.Locations[i] = strings.TrimSpace(l)
		if s.Locations[i] == "" {
			return s, fmt.Errorf("job spec: empty location in %q", strings.Join(s.Locations, ","))
		}
	}
	if hasDup(s.Locations) {
		return s, fmt.Errorf("job spec: a location is listed twice in %q", strings.Join(s.Locations, ","))
	}
	if err := ValidateDatasetName(s.Dataset); err != nil {
		return s, err
	}
	if s.ID == "" {
		s.ID = s.DefaultID()
	}
	if err := ValidateJobID(s.ID); err != nil {
		return s, err
	}
	return s, nil
}

func hasDup(xs []string) bool {
	seen := map[string]bool{}
	for _, x := range xs {
		if seen[x] {
			return true
		}
		seen[x] = true
	}
	return false
}

// ValidateDatasetName checks that name is one store key segment.
func ValidateDatasetName(name string) error {
	if name == "" {
		return fmt.Errorf("no dataset name")
	}
	if strings.Contains(name, "/") || store.ValidateKey("datasets/"+name) != nil {
		return fmt.Errorf("dataset name %q: want one path segment of letters, digits, '.', '-' or '_'", name)
	}
	return nil
}

var nonName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// DatasetName derives a dataset name from the model, the corpus and the
// spec's default id: <model>_<corpus kind[-name or file]>_<12 hex digits>,
// so the same spec always lands in the same dataset.
func (s JobSpec) DatasetName() string {
	m := filepath.Base(strings.TrimRight(s.Model, "/"))
	m = strings.Trim(nonName.ReplaceAllString(m, "-"), "-.")
	c := s.Corpus
	if cs, err := corpus.ParseSpec(c); err == nil {
		c = string(cs.Kind)
		if cs.Kind == corpus.Synthetic {
			c += "-" + cs.Name
		} else if cs.Path != "" {
			c += "-" + filepath.Base(cs.Path)
		}
	}
	c = strings.Trim(nonName.ReplaceAllString(c, "-"), "-.")
	return fmt.Sprintf("%s_%s_%s", m, c, strings.TrimPrefix(s.DefaultID(), "j-"))
}

// CollateConfig is the accumulator configuration of a job: the spec's
// sample sizes, with a quantile pool big enough for them.
func (s JobSpec) CollateConfig() collate.Config {
	c := collate.DefaultConfig()
	c.TopK, c.RandomK, c.QuantileBuckets, c.PerBucket, c.Seed = s.TopK, s.RandomK, s.QuantileBuckets, s.PerBucket, s.Seed
	c.QuantilePool = max(c.QuantilePool, 3*c.QuantileBuckets*c.PerBucket, c.RandomK, c.PerBucket)
	return c
}
