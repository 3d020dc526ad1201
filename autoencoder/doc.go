// Package autoencoder loads sparse autoencoders, runs them fast on batches of
// activations, splices them into the model so their latents become readable
// and ablatable locations, and downloads OpenAI's public GPT-2 small ones
// (tdb-semantics §10).
//
// Formats (Load):
//   - OpenAI torch.save state dicts (.pt: a zip holding data.pkl and raw
//     storages), read by the restricted unpickler of internal/pickle, which
//     builds plain Go values and never runs Python (fuzzed there with
//     FuzzDecode, and here, whole files, with FuzzOpenTorch).
//     "activation" ReLU (the default), Identity or TopK with
//     activation_state_dict {k, postact_fn}; as in OpenAI's loader, TopK
//     autoencoders normalise their input per token.
//   - SAELens folders: sae_weights.safetensors + cfg.json, architectures
//     standard (ReLU), topk and jumprelu, normalize_activations none or
//     layer_norm, apply_b_dec_to_input honoured.
//
// Unknown activations, corrupted or truncated files, shape mismatches and
// tensors the format does not define (PyTorch's strict load_state_dict
// would refuse them too; ignoring one would drop a weight) are errors naming
// the file and the tensor.
//
// Validation before work (spec.go), shared by tdb run / debug and by
// tdb collate before it submits a job: ParseSpec reads an --autoencoder
// entry (PATH_OR_NAME@LAYER, @LAYER:LOCATION or @LOCATION/LAYER); Inspect
// reads a file's header only (no tensor data) into an Info (format, widths,
// activation, the location and layer the file names); Info.Place picks the
// site (given, from the file, or mlp.post_act for d_mlp inputs) and checks
// layer range, location and width against the model. Every error about
// what the user named wraps ErrInvalid (errors.Is): permanent, exit code 2,
// never worth a retry.
//
// Computation: Encode runs x·W_encᵀ through blas32.Gemm (accelerated by
// package kernels once kernels.Install has been called), then the bias and
// activation per token (TopK by a k-element heap). Decode sums the decoder
// rows of the non-zero latents (the decoder is stored transposed,
// [n_latents, n_inputs], so each latent's write vector is contiguous) and
// falls back to a GEMM for dense codes. Options.DropDead removes latents
// whose training statistics say they never fired, keeping Original to map
// back to file indices.
//
// Splicing (Autoencoder.Splice → Spliced.Hook): the hook encodes the site,
// exposes Latents [B, T, n_latents], applies LatentAblations and adds
// decode(ablated) − decode(latents) to the activation, i.e. the
// reconstruction plus its error, so an unablated run is exactly the model.
// For attribution, Spliced.LatentGrad maps a site gradient to latent
// gradients, PreActGrad gives a latent's input direction for tracing and
// WriteVector its output direction; normalising autoencoders hold the
// token's std constant in all three (documented on each).
//
// Download (Pull, Open): names like mlp_post_act_v4/5 or
// gpt2-small/resid_delta_attn/3 map to blobs of the openaipublic container,
// read with an anonymous HTTP GET from $TDB_AUTOENCODER_ENDPOINT (default
// https://openaipublic.blob.core.windows.net) into the tdb cache
// ($TDB_CACHE_DIR, $XDG_CACHE_HOME/tdb or ~/.cache/tdb) under
// autoencoders/openaipublic/<blob path>, through hub.Fetch: the same
// resumable, verified .part download as the models.
//
// Start at Open (pull.go), then Inspect and Place (spec.go), then Load (formats.go, torchpt.go), then
// Autoencoder.Encode / Decode (autoencoder.go) and Splice (splice.go).
//
// It may import model (and model/hub for the cache and downloads),
// internal/pickle and internal/parallel, kernels (tests only), gonum and the
// standard library; never NATS, Arrow or Azure (Azurite serves the pull
// tests only).
package autoencoder
