// Package model is GPT-2 in pure Go: configuration, Hugging Face safetensors
// weights, a batched forward pass in which every activation location of the
// TDB semantics (§1) can be captured or overwritten through named hook
// points, and a backward pass from any scalar built from those locations.
//
// All matrix multiplies go through gonum's blas32 interface so that a faster
// implementation (package kernels) can be installed with blas32.Use.
//
// It may import only kernels, gonum and the standard library; subpackages
// hold the tokenizer and the hub download cache.
package model
