// Package debugger is the TDB engine: it answers "why does the model output A
// instead of B here?" exactly as tdb-semantics §3–§7 define it.
//
// A Request (prompt, targets, distractors, loss, ablations, an optional
// traced node and an optional second prompt) becomes one batched forward and
// backward pass of the model; the Response holds the loss, the next-token
// candidates, token-effect sums and the node table (top-k and bottom-k of
// each of the four columns: activation, write magnitude, estimated total
// effect, direct effect). Requests and responses are JSON-serialisable: the
// viewer and the CLI share them.
//
// Start at Engine.Run, then prepare (request.go: validation, every mistake a
// BadRequest, which callers find with errors.As), scalar (scalar.go: the loss
// or traced node seeding the backward pass), metrics (metrics.go: the four
// columns, a struct with one slice per column), table (table.go: top and
// bottom k of each column) and detail (details.go: the token views).
//
// It may import model (and its tokenizer) and autoencoder, never the
// collation pipeline, NATS, Arrow or Azure.
package debugger
