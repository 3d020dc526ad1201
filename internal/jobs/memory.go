package jobs

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"tdb/collate"
)

// Memory of a worker, and the component groups that bound it.
//
// A worker running a task holds the model's weights, one forward pass's
// buffers, the task's windows, and for every target (location and layer)
// of the task an accumulator, the captured activations of two batches and,
// for autoencoder latents, the autoencoder and its codes. Everything but
// the accumulators is fixed by the model and the batch; the accumulators
// grow with the components. A job whose targets do not fit the budget
// (JobSpec.WorkerMemory) is split into component groups: a task then
// covers a range of shards × one group, and the forward pass runs once per
// group (PlanGroups picks the fewest groups that fit).

// TargetRef names one collated target: a location and a layer.
type TargetRef struct {
	Location string `json:"location"`
	Layer    int    `json:"layer"`
}

func (t TargetRef) String() string { return fmt.Sprintf("%s layer %d", t.Location, t.Layer) }

// TargetSize is a target as the planner sizes it.
type TargetSize struct {
	TargetRef
	Components int `json:"components"`
	// Pairs: records of token pairs (attn.heads), n_ctx(n_ctx+1)/2 values.
	Pairs bool `json:"pairs,omitempty"`
	// Sparse: mostly zero components (autoencoder latents).
	Sparse bool `json:"sparse,omitempty"`
	// BatchBytes is what one batch of the job costs the target outside
	// its accumulator: the captured activations of the two batches in
	// flight, an autoencoder's codes, head scratch.
	BatchBytes int64 `json:"batch_bytes"`
	// WeightBytes is an autoencoder's weights (0 for a model location).
	WeightBytes int64 `json:"weight_bytes,omitempty"`
}

// Sizing is what the planner knows of a job's model and targets. The
// submitter resolves it (it reads the model's config and the autoencoders'
// headers anyway): the coordinator never loads a model.
type Sizing struct {
	// ModelBytes is the model's weights in memory.
	ModelBytes int64 `json:"model_bytes"`
	// ForwardBytes is one forward pass's buffers for a batch of the job.
	ForwardBytes int64 `json:"forward_bytes"`
	// Targets are every target of the job.
	Targets []TargetSize `json:"targets"`
}

// WorkerBaseBytes is a worker process's memory besides the model and the
// task: the Go runtime, the binary, NATS and store clients, the corpus
// reader.
const WorkerBaseBytes = 256 << 20

// PlanFill is the share of the budget the plan fills: the rest is the
// garbage collector's headroom (a worker sets its soft memory limit to the
// budget, so the heap's garbage is collected before it outgrows it).
const PlanFill = 0.9

// FixedBytes is a worker's memory for a task of taskTokens tokens before
// any target: WorkerBaseBytes, the model, a forward pass, and the task's
// windows (tokens and sources).
func (s JobSpec) FixedBytes(sz *Sizing, taskTokens int64) int64 {
	windows := taskTokens / int64(max(s.NCtx, 1))
	return WorkerBaseBytes + sz.ModelBytes + sz.ForwardBytes + taskTokens*4 + windows*64
}

// TargetBytes is one target's memory in a task of taskTokens tokens (of
// shards shards): its accumulator (collate.EstimateBytes), its batch
// buffers and its autoencoder.
func (s JobSpec) TargetBytes(t TargetSize, taskTokens int64, shards int) int64 {
	values := s.NCtx
	if t.Pairs {
		values = s.NCtx * (s.NCtx + 1) / 2
	}
	acc := collate.EstimateBytes(s.CollateConfig(), collate.Shape{
		Components: t.Components, Values: values, Tokens: s.NCtx,
		Windows: int(taskTokens / int64(max(s.NCtx, 1))), Sparse: t.Sparse, Shards: shards,
	})
	return acc + t.BatchBytes + t.WeightBytes
}

// MemoryPlan is how a job's targets are split into component groups.
type MemoryPlan struct {
	// Groups are the targets of each group, in layer then location order.
	// One group of every target when the job has no budget or no sizing.
	Groups [][]TargetRef
	// Bytes is each group's estimated worker memory (0 without sizing).
	Bytes []int64
}

// PlanGroups splits the job's targets into the fewest component groups
// whose estimated worker memory (FixedBytes plus their TargetBytes) fits
// PlanFill of WorkerMemory, for tasks of taskTokens tokens in shards
// shards. Targets are taken in layer order (a group of early layers runs a
// shorter forward pass: the model stops after the last layer a task
// captures), and the groups are balanced: the largest is as small as the
// number of groups allows. Without a budget or a sizing every target is in
// one group (nil Groups). It fails when even one target does not fit, and
// says what budget would.
func (s JobSpec) PlanGroups(taskTokens int64, shards int) (MemoryPlan, error) {
	sz := s.Sizing
	if sz == nil || len(sz.Targets) == 0 || s.WorkerMemory <= 0 {
		return MemoryPlan{}, nil
	}
	ts := slices.Clone(sz.Targets)
	slices.SortStableFunc(ts, func(a, b TargetSize) int {
		return cmp.Or(cmp.Compare(a.Layer, b.Layer), strings.Compare(a.Location, b.Location))
	})
	fixed := s.FixedBytes(sz, taskTokens)
	need := make([]int64, len(ts))
	for i, t := range ts {
		need[i] = s.TargetBytes(t, taskTokens, shards)
	}
	room := int64(float64(s.WorkerMemory)*PlanFill) - fixed
	for i, t := range ts {
		if need[i] > room {
			return MemoryPlan{}, fmt.Errorf("%s (%d components) needs about %s of worker memory with the model, a forward pass and the task's windows (%s); --worker-memory %s is too small: give at least %s",
				t.TargetRef, t.Components, FormatBytes(fixed+need[i]), FormatBytes(fixed), FormatBytes(s.WorkerMemory), FormatBytes(roundUp(int64(math.Ceil(float64(fixed+need[i])/PlanFill)))))
		}
	}
	// The fewest groups for room, then the smallest capacity that keeps
	// that many (balanced groups).
	n := len(cut(need, room))
	lo, hi := slices.Max(need), room
	for lo < hi {
		mid := lo + (hi-lo)/2
		if len(cut(need, mid)) <= n {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	var plan MemoryPlan
	for _, g := range cut(need, lo) {
		var refs []TargetRef
		bytes := fixed
		for _, i := range g {
			refs = append(refs, ts[i].TargetRef)
			bytes += need[i]
		}
		plan.Groups = append(plan.Groups, refs)
		plan.Bytes = append(plan.Bytes, bytes)
	}
	return plan, nil
}

// roundUp rounds a size up to what FormatBytes writes (0.1 GB, or 1 MB
// below a GB), so a size an error asks for is enough.
func roundUp(n int64) int64 {
	unit := int64(1e8)
	if n < 1e9 {
		unit = 1e6
	}
	return (n + unit - 1) / unit * unit
}

// cut splits need, in order, into runs of at most room bytes each
// (greedy: the fewest runs of consecutive items).
func cut(need []int64, room int64) [][]int {
	var out [][]int
	var cur []int
	var sum int64
	for i, n := range need {
		if len(cur) > 0 && sum+n > room {
			out = append(out, cur)
			cur, sum = nil, 0
		}
		cur = append(cur, i)
		sum += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// ParseBytes parses a memory size: a number with an optional unit, B,
// k/K, M, G, T or KB, MB, GB, TB (powers of 1000), Ki, Mi, Gi, Ti or KiB,
// MiB, GiB, TiB (powers of 1024). "24GB", "24GiB", "1.5G" and "25769803776"
// are sizes.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	x, err := strconv.ParseFloat(num, 64)
	if err != nil || x < 0 || math.IsInf(x, 0) {
		return 0, fmt.Errorf("memory size %q: want a number of bytes with an optional unit (24GB, 24GiB, 512MiB)", s)
	}
	mult, ok := byteUnits[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("memory size %q: unknown unit %q (want B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)", s, unit)
	}
	v := x * mult
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("memory size %q is too large", s)
	}
	return int64(v), nil
}

var byteUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
	"ki": 1 << 10, "kib": 1 << 10, "mi": 1 << 20, "mib": 1 << 20, "gi": 1 << 30, "gib": 1 << 30, "ti": 1 << 40, "tib": 1 << 40,
}

// FormatBytes writes a size in GB (powers of 1000) or MB below one GB.
func FormatBytes(n int64) string {
	if n >= 1e9 {
		return fmt.Sprintf("%.1fGB", float64(n)/1e9)
	}
	return fmt.Sprintf("%.0fMB", float64(n)/1e6)
}

// MachineMemory is the memory this process may use: the machine's
// MemTotal, or the cgroup's memory limit where it is lower (a container).
// 0 when neither can be read.
func MachineMemory() int64 {
	var best int64
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				f := strings.Fields(rest)
				if len(f) >= 1 {
					if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
						best = kb << 10
					}
				}
			}
		}
	}
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err == nil && v > 0 && (best == 0 || v < best) {
			best = v // "max" (no limit) does not parse
		}
	}
	return best
}
