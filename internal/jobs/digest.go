package jobs

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// FileDigest is what a job's local model folder or autoencoder file held
// at submission: a worker checks the files it loads against it before
// computing, so a checkpoint replaced under the same name (even with the
// same size and modification time) fails the job instead of mixing two
// models' activations in one dataset.
type FileDigest struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	// Hash is SampledHash of the file.
	Hash string `json:"sha256"`
}

// Sampling of SampledHash. A file up to WholeHashBytes is hashed whole.
// A larger one (a checkpoint: gpt2-xl is 6 GB, too much to read at every
// submission and on every worker) is hashed by its size, its head
// (HeadHashBytes, or the whole header of a safetensors file when that is
// longer: the tensor names, shapes, dtypes and offsets), its last
// SampleBytes and SampleCount evenly spaced ranges of SampleBytes: about
// 5 MiB read per file. New weights (another checkpoint, a fine-tune, a
// re-export) differ in every sampled range; an edit of a few bytes that
// misses every range, with the size unchanged, is not seen, and the
// modification time in FilesStamp is then the only witness.
const (
	WholeHashBytes = 8 << 20
	HeadHashBytes  = 1 << 20
	SampleBytes    = 64 << 10
	SampleCount    = 64
)

// SampledHash returns the size and the sampled sha256 (hex) of a file.
func SampledHash(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, "", err
	}
	size := fi.Size()
	h := sha256.New()
	fmt.Fprintf(h, "tdb sampled sha256 v1\n%d\n", size)
	if size <= WholeHashBytes {
		n, err := io.Copy(h, f)
		if err != nil {
			return 0, "", fmt.Errorf("%s: %w", path, err)
		}
		if n != size {
			return 0, "", fmt.Errorf("%s: read %d bytes of %d (changing while read?)", path, n, size)
		}
		return size, hex.EncodeToString(h.Sum(nil)), nil
	}
	head := int64(HeadHashBytes)
	if strings.HasSuffix(path, ".safetensors") {
		var lb [8]byte
		if _, err := f.ReadAt(lb[:], 0); err == nil {
			if n := int64(binary.LittleEndian.Uint64(lb[:])); n > 0 && 8+n <= size {
				head = max(head, 8+n)
			}
		}
	}
	ranges := [][2]int64{{0, min(head, size)}, {size - SampleBytes, SampleBytes}}
	for i := range int64(SampleCount) {
		ranges = append(ranges, [2]int64{i * (size - SampleBytes) / (SampleCount - 1), SampleBytes})
	}
	for _, r := range ranges {
		fmt.Fprintf(h, "%d+%d\n", r[0], r[1])
		if _, err := io.Copy(h, io.NewSectionReader(f, r[0], r[1])); err != nil {
			return 0, "", fmt.Errorf("%s: %w", path, err)
		}
	}
	return size, hex.EncodeToString(h.Sum(nil)), nil
}

// eachLocalFile calls fn with every regular file named by paths: a file
// itself, a folder's files (not recursive). Names that are not local paths
// (random:<preset>, hub names, store URLs) or do not exist give nothing.
func eachLocalFile(paths []string, fn func(path string, fi os.FileInfo)) {
	for _, p := range paths {
		if p == "" || strings.Contains(p, "://") {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if !fi.IsDir() {
			if fi.Mode().IsRegular() {
				fn(p, fi)
			}
			continue
		}
		des, err := os.ReadDir(p)
		if err != nil {
			continue
		}
		for _, de := range des {
			if fi, err := de.Info(); err == nil && fi.Mode().IsRegular() {
				fn(filepath.Join(p, de.Name()), fi)
			}
		}
	}
}

// localFiles lists the files of eachLocalFile, sorted, each once.
func localFiles(paths ...string) []string {
	var out []string
	eachLocalFile(paths, func(p string, _ os.FileInfo) { out = append(out, p) })
	slices.Sort(out)
	return slices.Compact(out)
}

// DigestFiles digests the local files of model folders and autoencoder
// files (see localFiles), for JobSpec.Files.
func DigestFiles(paths ...string) ([]FileDigest, error) {
	var out []FileDigest
	for _, p := range localFiles(paths...) {
		size, h, err := SampledHash(p)
		if err != nil {
			return nil, err
		}
		out = append(out, FileDigest{Path: p, Size: size, Hash: h})
	}
	return out, nil
}

// ErrFilesChanged marks a model or autoencoder file that is not what the
// job was submitted with (a permanent error).
var ErrFilesChanged = errors.New("model or autoencoder files changed since the job was submitted")

// VerifyFiles checks that every file of want is there with the same size
// and hash. A mismatch or a missing file is permanent (matches
// ErrFilesChanged); a read error is not.
func VerifyFiles(want []FileDigest) error {
	for _, d := range want {
		fi, err := os.Stat(d.Path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return Permanent(fmt.Errorf("%w: %s is missing here (the job was submitted with %d bytes, sha256 %s)", ErrFilesChanged, d.Path, d.Size, short(d.Hash)))
			}
			return fmt.Errorf("checking %s: %w", d.Path, err)
		}
		if fi.Size() != d.Size {
			return Permanent(fmt.Errorf("%w: %s is %d bytes, the job was submitted with %d", ErrFilesChanged, d.Path, fi.Size(), d.Size))
		}
		size, h, err := SampledHash(d.Path)
		if err != nil {
			return fmt.Errorf("checking %s: %w", d.Path, err)
		}
		if size != d.Size || h != d.Hash {
			return Permanent(fmt.Errorf("%w: %s has sha256 %s (sampled), the job was submitted with %s", ErrFilesChanged, d.Path, short(h), short(d.Hash)))
		}
	}
	return nil
}

func short(h string) string { return h[:min(len(h), 16)] }

// FilesVersion identifies the digests of the files under prefix (a model
// folder): a model cache keyed by it never serves old weights for a
// folder whose files changed. Empty when no digest is under prefix.
func FilesVersion(files []FileDigest, prefix string) string {
	h := sha256.New()
	n := 0
	for _, d := range files {
		if d.Path == prefix || strings.HasPrefix(d.Path, filepath.Join(prefix, "")+string(filepath.Separator)) {
			fmt.Fprintf(h, "%s %d %s\n", d.Path, d.Size, d.Hash)
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
