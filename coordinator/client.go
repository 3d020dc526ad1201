package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"tdb/internal/jobs"
	"tdb/internal/natsx"
)

// Client submits and inspects jobs. It needs only the KV bucket, which it
// creates if missing (and never reconfigures), so a job can be submitted
// before the coordinator starts.
type Client struct {
	kv jetstream.KeyValue
	js jetstream.JetStream
}

// NewClient binds to the job bucket over nc.
func NewClient(ctx context.Context, nc *nats.Conn, replicas int) (*Client, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	kv, err := natsx.OpenBucket(ctx, js, replicas)
	if err != nil {
		return nil, err
	}
	return &Client{kv: kv, js: js}, nil
}

// ErrNoJob is returned (wrapped) for an unknown job id.
var ErrNoJob = errors.New("no such job")

// Submit registers a job (spec normalized by Normalize) and returns its
// state. Submitting a spec whose job exists attaches to it: a running job
// keeps running, a done job stays done, and a failed or cancelled job is
// retried as a new attempt (shards already done are reused).
func (c *Client) Submit(ctx context.Context, spec jobs.JobSpec) (jobs.JobState, error) {
	spec, err := jobs.Normalize(spec)
	if err != nil {
		return jobs.JobState{}, err
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return jobs.JobState{}, err
	}
	if _, err := c.kv.Create(ctx, jobs.SpecKey(spec.ID), b); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return jobs.JobState{}, fmt.Errorf("submitting job %s: %w", spec.ID, err)
		}
		e, err := c.kv.Get(ctx, jobs.SpecKey(spec.ID))
		if err != nil {
			return jobs.JobState{}, fmt.Errorf("submitting job %s: %w", spec.ID, err)
		}
		if !bytes.Equal(e.Value(), b) {
			return jobs.JobState{}, fmt.Errorf("job %s already exists with a different spec (pick another --job id, or omit it to derive one from the spec)", spec.ID)
		}
	}
	now := time.Now().UTC()
	st := jobs.JobState{ID: spec.ID, Status: jobs.Submitted, Attempt: 1, Submitted: now, Updated: now}
	sb, _ := json.Marshal(st)
	if _, err := c.kv.Create(ctx, jobs.StateKey(spec.ID), sb); err == nil {
		return st, nil
	} else if !errors.Is(err, jetstream.ErrKeyExists) {
		return jobs.JobState{}, fmt.Errorf("submitting job %s: %w", spec.ID, err)
	}
	return natsx.UpdateState(ctx, c.kv, spec.ID, func(s *jobs.JobState) bool {
		if s.Status != jobs.Failed && s.Status != jobs.Cancelled {
			return false
		}
		s.Attempt++
		s.Status, s.Reason, s.Submitted, s.Finished, s.Started = jobs.Submitted, "", now, nil, nil
		return true
	})
}

// Rerun starts a done job again as a new attempt (its dataset is gone from
// the store, so "done" is no longer true) and returns its state. The
// shard records go first: their partials were deleted after the merge.
func (c *Client) Rerun(ctx context.Context, id string) (jobs.JobState, error) {
	lister, err := c.kv.ListKeysFiltered(ctx, jobs.ShardKeys(id))
	if err != nil {
		return jobs.JobState{}, fmt.Errorf("rerunning job %s: %w", id, err)
	}
	for key := range lister.Keys() {
		if err := c.kv.Purge(ctx, key); err != nil {
			return jobs.JobState{}, fmt.Errorf("rerunning job %s: %w", id, err)
		}
	}
	now := time.Now().UTC()
	return natsx.UpdateState(ctx, c.kv, id, func(s *jobs.JobState) bool {
		if s.Status != jobs.Done {
			return false
		}
		s.Attempt++
		s.Status, s.Reason, s.Submitted, s.Finished, s.Started, s.Tokens = jobs.Submitted, "", now, nil, nil, 0
		return true
	})
}

// Leader returns the lease of the leading coordinator (an error wrapping
// jetstream.ErrKeyNotFound, or ErrBucketNotFound, when none runs).
func (c *Client) Leader(ctx context.Context) (natsx.Lease, error) {
	kv, err := c.js.KeyValue(ctx, natsx.LeaderBucket)
	if err != nil {
		return natsx.Lease{}, err
	}
	return natsx.CurrentLeader(ctx, kv)
}

// Job returns a job's spec and state.
func (c *Client) Job(ctx context.Context, id string) (jobs.JobSpec, jobs.JobState, error) {
	var spec jobs.JobSpec
	var st jobs.JobState
	if _, err := natsx.GetJSON(ctx, c.kv, jobs.StateKey(id), &st); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return spec, st, fmt.Errorf("%w: %s", ErrNoJob, id)
		}
		return spec, st, err
	}
	if _, err := natsx.GetJSON(ctx, c.kv, jobs.SpecKey(id), &spec); err != nil {
		return spec, st, err
	}
	return spec, st, nil
}

// List returns the state of every job, most recently submitted first.
func (c *Client) List(ctx context.Context) ([]jobs.JobState, error) {
	lister, err := c.kv.ListKeysFiltered(ctx, jobs.StateKeys)
	if err != nil {
		return nil, fmt.Errorf("listing jobs: %w", err)
	}
	var out []jobs.JobState
	for key := range lister.Keys() {
		var st jobs.JobState
		if _, err := natsx.GetJSON(ctx, c.kv, key, &st); err != nil {
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				continue
			}
			return nil, err
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b jobs.JobState) int { return b.Submitted.Compare(a.Submitted) })
	return out, nil
}

// Cancel stops a job: workers drop its shards and the coordinator purges
// its queue. A finished job cannot be cancelled.
func (c *Client) Cancel(ctx context.Context, id string) (jobs.JobState, error) {
	if _, _, err := c.Job(ctx, id); err != nil {
		return jobs.JobState{}, err
	}
	var final jobs.JobStatus
	st, err := natsx.UpdateState(ctx, c.kv, id, func(s *jobs.JobState) bool {
		if s.Status.Final() {
			final = s.Status
			return false
		}
		now := time.Now().UTC()
		s.Status, s.Reason, s.Finished = jobs.Cancelled, "cancelled by request", &now
		return true
	})
	if err != nil {
		return st, err
	}
	if final != "" {
		return st, fmt.Errorf("job %s is already %s", id, final)
	}
	return st, nil
}

// Progress summarizes a job's shard records.
type Progress struct {
	State jobs.JobState
	// Done counts shards with a result; Running those being computed now;
	// Failed those whose last delivery of this attempt failed (retrying,
	// or final).
	Done, Running, Failed int
	// Tokens counts tokens of done shards plus progress of running ones
	// (an explain job: components gone through, explained or skipped).
	Tokens int64
	// Windows counts windows of done shards (an explain job: components
	// its done tasks explained, as opposed to found already explained).
	Windows int64
	// LastError is the most recent shard error of this attempt.
	LastError string
}

// Progress reads a job's state and shard records once.
func (c *Client) Progress(ctx context.Context, id string) (Progress, error) {
	t := newTracker(id)
	lister, err := c.kv.ListKeysFiltered(ctx, "jobs."+id+".>")
	if err != nil {
		return Progress{}, err
	}
	for key := range lister.Keys() {
		e, err := c.kv.Get(ctx, key)
		if err != nil {
			continue
		}
		t.apply(e.Key(), e.Value())
	}
	if t.state.ID == "" {
		return Progress{}, fmt.Errorf("%w: %s", ErrNoJob, id)
	}
	return t.progress(), nil
}

// Wait follows a job until it is done, failed or cancelled, calling fn (may
// be nil) with the progress after every change, and returns the final
// state. A failed or cancelled job returns an error with its reason.
func (c *Client) Wait(ctx context.Context, id string, fn func(Progress)) (jobs.JobState, error) {
	w, err := natsx.WatchKeys(ctx, c.kv, "jobs."+id+".>", nil)
	if err != nil {
		return jobs.JobState{}, fmt.Errorf("watching job %s: %w", id, err)
	}
	defer w.Stop()
	t := newTracker(id)
	for {
		select {
		case <-ctx.Done():
			return t.state, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return t.state, fmt.Errorf("watching job %s: %w", id, context.Cause(ctx)) // natsx.Watch ends only with ctx
			}
			if e != nil {
				t.apply(e.Key(), e.Value())
				if e.Operation() != jetstream.KeyValuePut {
					continue
				}
			}
			if t.state.ID == "" {
				if e != nil {
					continue
				}
				// The watch's initial values can race with a concurrent update
				// of the state key; read it directly before giving up.
				got, err := c.kv.Get(ctx, jobs.StateKey(id))
				if err != nil {
					return t.state, fmt.Errorf("%w: %s", ErrNoJob, id)
				}
				t.apply(got.Key(), got.Value())
				if t.state.ID == "" {
					return t.state, fmt.Errorf("%w: %s", ErrNoJob, id)
				}
			}
			if fn != nil {
				fn(t.progress())
			}
			switch t.state.Status {
			case jobs.Done:
				return t.state, nil
			case jobs.Failed:
				return t.state, fmt.Errorf("job %s failed: %s", id, t.state.Reason)
			case jobs.Cancelled:
				return t.state, fmt.Errorf("job %s was cancelled", id)
			}
		}
	}
}

// tracker folds KV entries of one job into a Progress.
type tracker struct {
	id     string
	state  jobs.JobState
	shards map[int]jobs.ShardRecord
}

func newTracker(id string) *tracker { return &tracker{id: id, shards: map[int]jobs.ShardRecord{}} }

func (t *tracker) apply(key string, value []byte) {
	if key == jobs.StateKey(t.id) {
		var st jobs.JobState
		if json.Unmarshal(value, &st) == nil {
			t.state = st
		}
		return
	}
	if _, i, ok := jobs.ParseShardKey(key); ok {
		var r jobs.ShardRecord
		if json.Unmarshal(value, &r) == nil {
			t.shards[i] = r
		}
	}
}

func (t *tracker) progress() Progress {
	p := Progress{State: t.state}
	var last time.Time
	for _, r := range t.shards {
		switch {
		case r.Status == jobs.ShardDone:
			p.Done++
			p.Tokens += r.Tokens
			p.Windows += r.Windows
		case r.Attempt != t.state.Attempt:
		case r.Status == jobs.ShardRunning:
			p.Running++
			p.Tokens += r.Tokens
		case r.Status == jobs.ShardError:
			p.Failed++
			if r.Updated.After(last) {
				last, p.LastError = r.Updated, fmt.Sprintf("shard %d: %s", r.Index, r.Error)
			}
		}
	}
	return p
}

// Format renders progress on one line: status, shards done / in flight /
// failed, tokens, tokens/s and ETA (from the planned token estimate).
func (p Progress) Format(now time.Time) string {
	var b strings.Builder
	st := p.State
	fmt.Fprintf(&b, "%s %s: shards %d/%d done, %d in flight, %d failed; %s tokens", st.ID, st.Status, p.Done, st.Shards, p.Running, p.Failed, human(float64(p.Tokens)))
	if st.Started != nil {
		end := now
		if st.Finished != nil {
			end = *st.Finished
		}
		el := end.Sub(*st.Started).Seconds()
		if el > 0 && p.Tokens > 0 {
			rate := float64(p.Tokens) / el
			fmt.Fprintf(&b, ", %s tok/s", human(rate))
			if !st.Status.Final() && st.PlannedTokens > p.Tokens {
				eta := time.Duration(float64(st.PlannedTokens-p.Tokens) / rate * float64(time.Second))
				fmt.Fprintf(&b, ", ETA %s", eta.Round(time.Second))
			}
		}
	}
	return b.String()
}

func human(x float64) string {
	switch {
	case x >= 1e9:
		return fmt.Sprintf("%.2fG", x/1e9)
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e4:
		return fmt.Sprintf("%.1fk", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}
