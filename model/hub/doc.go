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
// The package only imports the standard library; it knows nothing about
// tensors (the model package loads what it downloads).
package hub
