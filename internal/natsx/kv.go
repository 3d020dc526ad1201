package natsx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"tdb/internal/jobs"
)

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
func UpdateState(ctx context.Context, kv jetstream.KeyValue, job string, fn func(*jobs.JobState) bool) (jobs.JobState, error) {
	for range 100 {
		var st jobs.JobState
		rev, err := GetJSON(ctx, kv, jobs.StateKey(job), &st)
		if err != nil {
			return jobs.JobState{}, err
		}
		if !fn(&st) {
			return st, nil
		}
		st.Updated = time.Now().UTC()
		b, err := json.Marshal(st)
		if err != nil {
			return jobs.JobState{}, err
		}
		_, err = kv.Update(ctx, jobs.StateKey(job), b, rev)
		if err == nil {
			return st, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return jobs.JobState{}, fmt.Errorf("updating state of job %s: %w", job, err)
		}
	}
	return jobs.JobState{}, fmt.Errorf("updating state of job %s: too many concurrent changes", job)
}
