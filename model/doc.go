// Package model is GPT-2 in pure Go: configuration, Hugging Face safetensors
// weights, a batched forward pass in which every activation location of the
// TDB semantics (§1) can be captured or overwritten through named hook
// points, and a backward pass from any scalar built from those locations.
//
// All matrix multiplies go through gonum's blas32 interface so that a faster
// implementation (package kernels) can be installed with blas32.Use.
//
// Open resolves what a user names a model by (a hub name, a local folder or
// random:<preset>, announced loudly) for every command and service.
//
// Validation before work, shared by the CLI and tdb collate (which checks a
// job before submitting it): InspectName / Inspect check a checkpoint's
// config.json and safetensors header (shapes, extents, no overlapping
// tensors, no tensor the configuration does not use) without reading the
// weights; ValidateTokens and ValidateContext check token ids and lengths.
// Their errors, and every error of Load about the files, wrap ErrInvalid:
// input that can never succeed (exit code 2, no retry).
//
// Start at Open (open.go) or Load (weights.go), then Model.Forward
// (forward.go: hook points, interventions) and Model.Backward (backward.go).
//
// It may import kernels, gonum, the standard library and its subpackages:
// tokenizer, and hub (the download cache behind Open), which imports no
// part of model.
package model
