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
// It may import model (and its tokenizer) and autoencoder.
package debugger
