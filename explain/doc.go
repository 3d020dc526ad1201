// Package explain gives every component of a collated dataset (MLP neuron,
// attention head, autoencoder latent) readable explanations with honest
// scores, stored beside the dataset.
//
// Pieces:
//
//   - Component / Record: the records an explainer reads (top, random and
//     quantile records: tokens + activations). The package's own small view
//     of a dataset, filled from package dataset (FromView, EachComponent) so that
//     explainers and scorers can be tested on planted data.
//   - Builtin: an explainer without a language model. It looks for the tokens
//     and short contexts over-represented at the peak positions of top
//     records against the rest, and writes one short phrase in a fixed
//     grammar (`the token " France"`, `" France" after " Paris"`,
//     `one of " Mary", " John", " Tom"`, `a capitalized word`), which
//     BuiltinJudge parses back into a per-token prediction.
//   - Scoring (Score*): simulation (the correlation of simulated and true
//     activations over held-out top and random records, ev_correlation_score),
//     detection (balanced accuracy of telling activating records from
//     non-activating ones) and fuzzing (balanced accuracy of telling
//     correctly marked peak tokens from randomly marked ones). Each score
//     names its judge (the built-in simulator or an LLM); methods are never
//     mixed into one number.
//   - LLMExplainer / LLMJudge: the same over an OpenAI-compatible
//     chat-completions endpoint (package explain/llm: retries, back-off,
//     rate limit, content-addressed cache in the store).
//   - Storage: datasets/<name>/explanations/<location>/layer=<L>/components=<lo>-<hi>.parquet,
//     one file per block of ChunkSize components, one row per (component,
//     method); Read, Write (merging), Search.
//   - Job: Run explains every requested component, skipping those already
//     explained with the method (resumable); a Task (one location, layer and
//     block of components) is the unit of the NATS work queue: the
//     coordinator plans an explain job with Plan and workers run RunTask.
//   - Import: the public JSONL explanation files ({layer}/{index}.jsonl).
//
// The explainer reads records with even rank (top and random) plus the
// quantile samples; scores use the held-out odd-rank top and random records,
// so a builtin explanation is never scored on the records it was fitted to.
// Attention-head (pair) records are reduced to one activation per query
// token (the maximum over its keys) before explaining.
//
// It imports dataset (the read contract of collated datasets), store and
// model/tokenizer; nothing imports it but the query service, the viewer, the
// pipeline (coordinator, worker) and cmd/tdb.
package explain
