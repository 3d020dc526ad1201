// Package layering holds no code: its test checks the import rules of
// docs/architecture.md with `go list`, so a change that makes the model
// depend on NATS, or a service depend on the pipeline, fails CI.
package layering
