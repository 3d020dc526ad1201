package autoencoder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"tdb/model"
	"tdb/model/hub"
)

// The public GPT-2 small autoencoders live in OpenAI's public Azure blob
// container, one torch.save file per layer:
//
//	https://openaipublic.blob.core.windows.net/openaipublic/sparse-autoencoder/gpt2-small/<kind>[_v4]/autoencoders/<layer>.pt
const (
	// defaultEndpoint is the blob service of the openaipublic account.
	defaultEndpoint = "https://openaipublic.blob.core.windows.net"
	// blobContainer holds the autoencoders; it allows anonymous reads.
	blobContainer = "openaipublic"
	// envEndpoint overrides the blob service URL (a mirror, or Azurite:
	// http://127.0.0.1:10000/devstoreaccount1).
	envEndpoint = "TDB_AUTOENCODER_ENDPOINT"
)

// ErrNotFound is returned (wrapped) when the named autoencoder is not in the
// container.
var ErrNotFound = errors.New("not found")

// Kinds of public autoencoders and the locations they read.
var kinds = map[string]model.Location{
	"mlp_post_act":     model.MLPPostAct,
	"resid_delta_mlp":  model.ResidDeltaMLP,
	"resid_delta_attn": model.ResidDeltaAtt,
}

// publicModel is the only model OpenAI published autoencoders for, and its
// layer count.
const (
	publicModel  = "gpt2-small"
	publicLayers = 12
)

// Name identifies a public autoencoder. Its text form is
//
//	[gpt2-small/]<kind>[_v4]/<layer>
//
// with kind mlp_post_act (reads mlp.post_act, 3072 inputs), resid_delta_mlp
// (resid.delta_mlp, 768) or resid_delta_attn (resid.delta_attn, 768), the
// _v4 suffix for the newer release, and layer 0..11; for example
// mlp_post_act_v4/5 or gpt2-small/resid_delta_attn/3.
type Name struct {
	Kind  string // mlp_post_act, resid_delta_mlp or resid_delta_attn
	V4    bool
	Layer int
}

// ParseName parses the text form of a Name.
func ParseName(s string) (Name, error) {
	usage := func(why string) error {
		return fmt.Errorf("bad autoencoder name %q: %s (want [gpt2-small/]<kind>[_v4]/<layer>, kind one of mlp_post_act, resid_delta_mlp, resid_delta_attn, e.g. mlp_post_act_v4/5)", s, why)
	}
	parts := strings.Split(strings.TrimSpace(s), "/")
	if len(parts) == 3 {
		if parts[0] != publicModel {
			return Name{}, usage("only gpt2-small autoencoders are published")
		}
		parts = parts[1:]
	}
	if len(parts) != 2 {
		return Name{}, usage("no layer")
	}
	var n Name
	n.Kind, n.V4 = strings.CutSuffix(parts[0], "_v4")
	if _, ok := kinds[n.Kind]; !ok {
		return Name{}, usage(fmt.Sprintf("unknown kind %q", parts[0]))
	}
	layer, err := strconv.Atoi(parts[1])
	if err != nil || layer < 0 || layer >= publicLayers {
		return Name{}, usage(fmt.Sprintf("layer %q is not in 0..%d", parts[1], publicLayers-1))
	}
	n.Layer = layer
	return n, nil
}

func (n Name) String() string {
	v := ""
	if n.V4 {
		v = "_v4"
	}
	return fmt.Sprintf("%s%s/%d", n.Kind, v, n.Layer)
}

// Location is the model location the autoencoder reads.
func (n Name) Location() model.Location { return kinds[n.Kind] }

// Blob is the blob's path inside the container.
func (n Name) Blob() string {
	v := ""
	if n.V4 {
		v = "_v4"
	}
	return fmt.Sprintf("sparse-autoencoder/%s/%s%s/autoencoders/%d.pt", publicModel, n.Kind, v, n.Layer)
}

// blobEndpoint is the blob service URL: $TDB_AUTOENCODER_ENDPOINT or
// defaultEndpoint, without a trailing slash.
func blobEndpoint() string {
	if e := os.Getenv(envEndpoint); e != "" {
		return strings.TrimRight(e, "/")
	}
	return defaultEndpoint
}

// cachePath is where the named autoencoder is (or will be) cached:
// <cache>/autoencoders/openaipublic/<blob path>, with <cache> the model
// cache root ($TDB_CACHE_DIR, $XDG_CACHE_HOME/tdb or ~/.cache/tdb).
func cachePath(n Name) string {
	return filepath.Join(hub.CacheDir(), "autoencoders", blobContainer, filepath.FromSlash(n.Blob()))
}

// Pull downloads the named public autoencoder into the cache, unless it is
// already there, and returns the file's path. The blob is read anonymously
// (a plain HTTP GET of the public container) through hub.Fetch: written to
// a .part file, resumed after an interruption, checked against the blob's
// size and renamed into place, so the cache never holds a partial file.
// progress receives a progress bar (nil: silent).
func Pull(ctx context.Context, name string, progress io.Writer) (string, error) {
	n, err := ParseName(name)
	if err != nil {
		return "", err
	}
	path := cachePath(n)
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		return path, nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("autoencoder cache: %w", err)
	}
	endpoint := blobEndpoint()
	if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("autoencoder endpoint %q is not an http(s) URL (check %s)", endpoint, envEndpoint)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("autoencoder cache: %w", err)
	}
	unlock, err := hub.LockDir(ctx, dir, nil)
	if err != nil {
		return "", err
	}
	defer unlock()
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		return path, nil // another process fetched it while we waited
	}
	src := endpoint + "/" + blobContainer + "/" + n.Blob()
	err = hub.Fetch(ctx, src, path, hub.FetchOptions{
		Label:    "autoencoder " + n.String(),
		Name:     n.String(),
		Progress: progress,
		Refused: func(resp *http.Response) error {
			code := resp.Header.Get("X-Ms-Error-Code")
			switch resp.StatusCode {
			case http.StatusNotFound:
				return fmt.Errorf("autoencoder %s: %w at %s (%s)", n, ErrNotFound, src, code)
			case http.StatusForbidden, http.StatusUnauthorized:
				return fmt.Errorf("autoencoder %s: %s: anonymous read refused (%s): is the container public?", n, src, code)
			}
			return nil
		},
	})
	if err != nil {
		return "", err
	}
	return path, nil
}

// Open resolves what a user names an autoencoder by and loads it: an
// existing file or SAELens folder is loaded as it is (its Layer set to
// layer when layer ≥ 0); anything else is a public Name, pulled on first
// use. A name's layer may be left out ("mlp_post_act_v4") when layer ≥ 0
// gives it. Location and Layer are set from the name. Errors in what was
// named (a missing file, a bad or unknown name, a bad file) wrap ErrInvalid;
// download failures do not.
func Open(ctx context.Context, pathOrName string, layer int, opts Options, progress io.Writer) (*Autoencoder, error) {
	if _, err := os.Stat(pathOrName); err == nil {
		a, err := Load(ctx, pathOrName, opts)
		if err != nil {
			return nil, err
		}
		if layer >= 0 {
			a.Layer = layer
		}
		return a, nil
	}
	name := pathOrName
	if layer >= 0 && !strings.Contains(strings.TrimPrefix(name, publicModel+"/"), "/") {
		name += "/" + strconv.Itoa(layer)
	}
	n, err := ParseName(name)
	if err != nil {
		if looksLikePath(pathOrName) {
			return nil, invalid(fmt.Errorf("autoencoder file %s does not exist", pathOrName))
		}
		return nil, invalid(err)
	}
	if layer >= 0 && n.Layer != layer {
		return nil, invalid(fmt.Errorf("autoencoder %s is for layer %d, not %d", n, n.Layer, layer))
	}
	path, err := Pull(ctx, n.String(), progress)
	if errors.Is(err, ErrNotFound) {
		return nil, invalid(err)
	}
	if err != nil {
		return nil, err
	}
	a, err := Load(ctx, path, opts)
	if err != nil {
		return nil, err
	}
	a.Location, a.Layer = n.Location(), n.Layer
	return a, nil
}

// looksLikePath tells a mistyped file name from a mistyped public name.
func looksLikePath(s string) bool {
	return filepath.IsAbs(s) || strings.HasPrefix(s, ".") || strings.HasPrefix(s, "~") ||
		strings.HasSuffix(s, ".pt") || strings.HasSuffix(s, ".safetensors")
}
