// Package viewer is tdb's web app: the TDB session page (prompt, target and
// distractor, node table, ablations, tracing, token views) against the live
// model through the debugger engine, and the component pages, home and
// search pages over the collated datasets that the query service serves.
//
// Everything the browser loads is embedded (go:embed) plain JavaScript
// modules and CSS, so building needs no node and running fetches nothing
// from the internet. The server adds the session API (POST /api/v1/tdb, the
// debugger's Request/Response JSON in the query service's envelope), runs
// model requests through a bounded queue (a busy server answers 503, it
// never piles up requests until memory runs out), limits prompt length,
// checks an optional bearer token in constant time, and mounts the query
// service's handler for every other /api/v1 path. It imports the debugger,
// the model and the tokenizer, never the pipeline (worker, coordinator,
// NATS).
//
// The pages keep contract hooks for outside browser tests: the node table
// is [data-testid=node-table] with one tr[data-node="<node name>"] per node,
// the loss [data-testid=loss], a component page's [data-testid=top-records]
// holds one [data-record] per record whose tokens are [data-token-index]
// elements carrying data-activation, and errors appear in
// [data-testid=error].
package viewer
