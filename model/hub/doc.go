// Package hub fetches GPT-2 checkpoints (config.json + model.safetensors)
// from the Hugging Face hub, or a mirror, into a local cache.
//
// Downloads resume after interruption (a ".part" file and an HTTP Range
// request), are verified against the size and sha256 the hub announces in
// its X-Linked-Size / X-Linked-Etag headers, and only appear under their
// final name after verification (atomic rename), so a file in the cache is
// always complete. Resolve lets every command accept either a hub name or a
// local folder.
//
// Fetch is the one resumable, verified download of tdb (the autoencoder
// cache uses it too): a partFile (partfile.go) holds NAME.part, resumes it,
// verifies it and renames it into place.
//
// Resolve marks a name or folder that can never resolve with ErrBadName,
// a repository the hub does not have with ErrNotFound (model turns both into
// model.ErrInvalid).
//
// Start at Pull (pull.go), then Fetch and fetcher.attempt (fetch.go), then
// partFile.
//
// The package imports only the standard library and internal/fsutil; it
// knows nothing about tensors (the model package loads what it downloads).
package hub
