package jobs

import (
	"fmt"
	"strconv"
	"strings"
)

// The key layout of a job, in one place: KV keys (dot-separated, so a
// watch can match one job or every job with NATS wildcards) and store keys
// (slash-separated, under jobs/<id>/). Datasets live under datasets/<name>/
// (collate.ManifestKey).

// KV keys of a job.
func SpecKey(job string) string             { return "jobs." + job + ".spec" }
func StateKey(job string) string            { return "jobs." + job + ".state" }
func ShardKey(job string, shard int) string { return "jobs." + job + ".shard." + strconv.Itoa(shard) }
func ShardKeys(job string) string           { return "jobs." + job + ".shard.*" }

// JobKeys matches every KV key of one job (spec, state and shard records).
func JobKeys(job string) string { return "jobs." + job + ".>" }

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

// SubjectPrefix starts every shard message subject: tdb.shards.<job>.<shard>.
const SubjectPrefix = "tdb.shards"

// Subject is the subject of one shard's message. One subject per shard lets
// the coordinator look a shard's message up directly.
func Subject(job string, shard int) string {
	return fmt.Sprintf("%s.%s.%d", SubjectPrefix, job, shard)
}

// JobSubjects matches every shard message of a job.
func JobSubjects(job string) string { return SubjectPrefix + "." + job + ".>" }

// MsgID is the de-duplication id of a shard message: publishing the same
// shard of the same attempt twice stores it once.
func MsgID(job string, attempt, shard int) string {
	return fmt.Sprintf("%s/%d/%d", job, attempt, shard)
}
