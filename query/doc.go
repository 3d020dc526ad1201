// Package query is the HTTP API over collated datasets (tdb query, and the
// viewer mounts the same handler): datasets and manifests, one component's
// records and statistics, a layer's statistics table (sorted, paged),
// search by token and by text over top records, and gzipped JSONL export;
// and the explanations package explain stores beside a dataset (per
// component, and searched by their text), cached with a TTL since
// `tdb explain` adds them after the dataset is written.
//
// It reads the dataset format through tdb/dataset straight from a
// tdb/store (local, memory or Azure Blob) with ranged reads, and never
// imports NATS or the model (only the tokenizer, for token strings and
// search, and package explain for the explanations' storage).
//
// Start at New: it returns an http.Handler serving /api/v1/...; Reader
// holds the caches (manifests and Parquet footers for ever: a dataset is
// immutable once its manifest exists; decoded components, row groups and
// rendered answers in a byte-bounded LRU). Errors are mapped to the envelope and
// HTTP status in one place, writeError: store.ErrNotFound → 404 not_found,
// badRequest → 400 bad_request, dataset.ErrCorrupt and the rest → 500
// internal (naming the file), context deadlines → 503 unavailable.
package query
