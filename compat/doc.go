// Package compat answers the JSON API of the original Transformer Debugger
// front end (OpenAI's React neuron_viewer), so that people who use that app
// can point it at `tdb serve` (backend URL http://HOST:PORT/compat) and keep
// working. Every number comes from the same code as the native API: the
// debugger engine for inference (/batched_tdb, /batched, /derived_scalars,
// /derived_attention_scalars, /model_info), the collated datasets for node
// pages (/neuron_record, /attention_head_record, /neuron_datasets_metadata)
// and an Explanations store for /existing_explanations, /explain, /score.
// This package only translates names and shapes (camelCase fields, the
// app's node indices and dataset names); docs/compat.md lists what differs.
//
// It may import debugger, model, dataset, store and explain (ExplainStore,
// the explanation routes' backend; not collate: it only reads datasets).
package compat
