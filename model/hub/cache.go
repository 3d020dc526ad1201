package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The files a GPT-2 checkpoint folder must hold, in download order (the small
// config first, so a wrong name fails before the big download starts).
const (
	configFile  = "config.json"
	weightsFile = "model.safetensors"
)

// checkpointFiles lists what Pull downloads.
var checkpointFiles = []string{configFile, weightsFile}

// defaultEndpoint is the public Hugging Face hub.
const defaultEndpoint = "https://huggingface.co"

// CacheDir is the root of tdb's download cache: $TDB_CACHE_DIR, else
// $XDG_CACHE_HOME/tdb, else ~/.cache/tdb (a temp folder if there is no home).
func CacheDir() string {
	if d := os.Getenv("TDB_CACHE_DIR"); d != "" {
		return d
	}
	// The XDG spec says relative values are invalid and must be ignored.
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "tdb")
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, ".cache", "tdb")
	}
	return filepath.Join(os.TempDir(), "tdb-cache")
}

// Endpoint is the hub base URL: $TDB_HF_ENDPOINT (for mirrors) or
// https://huggingface.co, without a trailing slash.
func Endpoint() string {
	if e := os.Getenv("TDB_HF_ENDPOINT"); e != "" {
		return strings.TrimRight(e, "/")
	}
	return defaultEndpoint
}

// modelDir is the cache folder that holds (or will hold) ref's files.
func modelDir(cacheDir string, ref Ref) string {
	return filepath.Join(cacheDir, "models", filepath.FromSlash(ref.cacheKey()))
}

// Resolve turns what a user typed after --model into a folder holding
// config.json and model.safetensors. An existing folder is used as it is
// (it must hold both files); anything else is a hub name, pulled into the
// cache on first use and read from the cache afterwards without any network
// request. progress receives the download progress bar (nil: silent).
//
// A name that can never resolve (empty, malformed, a missing or incomplete
// folder) gives an error wrapping ErrBadName; a repository the hub does not
// have, ErrNotFound.
func Resolve(ctx context.Context, nameOrDir string, progress io.Writer) (string, error) {
	if nameOrDir == "" {
		return "", badName(errors.New("no model given: use a hub name (gpt2, gpt2-medium, gpt2-large, gpt2-xl, owner/name) or a local folder"))
	}
	if fi, err := os.Stat(nameOrDir); err == nil && fi.IsDir() {
		if err := checkDir(nameOrDir); err != nil {
			return "", badName(err)
		}
		return nameOrDir, nil
	}
	if looksLikePath(nameOrDir) {
		return "", badName(fmt.Errorf("model folder %s does not exist", nameOrDir))
	}
	if _, err := ParseName(nameOrDir, ""); err != nil {
		return "", badName(err)
	}
	return Pull(ctx, nameOrDir, PullOptions{Progress: progress})
}

// ErrBadName marks a model name or folder that can never resolve (tested
// with errors.Is; the message is the wrapped error's).
var ErrBadName = errors.New("bad model name")

type badNameError struct{ err error }

func (e badNameError) Error() string   { return e.err.Error() }
func (e badNameError) Unwrap() []error { return []error{e.err, ErrBadName} }

func badName(err error) error { return badNameError{err} }

// checkDir reports whether dir holds the files of a checkpoint, naming the
// missing one.
func checkDir(dir string) error {
	for _, f := range checkpointFiles {
		fi, err := os.Stat(filepath.Join(dir, f))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("model folder %s has no %s (a GPT-2 checkpoint needs %s)", dir, f, strings.Join(checkpointFiles, " and "))
		case err != nil:
			return fmt.Errorf("model folder %s: %w", dir, err)
		case fi.IsDir():
			return fmt.Errorf("model folder %s: %s is a folder, not a file", dir, f)
		}
	}
	return nil
}

// looksLikePath tells a mistyped folder apart from a hub name, so that
// "./my-model" gives "does not exist" instead of a confusing hub 404.
func looksLikePath(s string) bool {
	return s == "." || s == ".." || strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") ||
		strings.HasPrefix(s, "../") || strings.HasPrefix(s, "~") || strings.Count(s, "/") > 1 && !strings.Contains(s, "@") ||
		filepath.IsAbs(s)
}
