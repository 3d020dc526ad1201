package jobs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// LocalFilesStamp identifies the current content of local model folders
// and autoencoder files by the name, size and modification time of every
// regular file (a folder's files, not recursive). Names that are not local
// paths (random:<preset>, hub names, store URLs) add nothing. A job's
// identity includes it, so replacing a model's weights or an autoencoder
// file is a new job, never the finished one reused.
func LocalFilesStamp(paths ...string) string {
	type entry struct {
		Path        string
		Size, MTime int64
	}
	var es []entry
	add := func(p string, fi os.FileInfo) {
		if fi.Mode().IsRegular() {
			es = append(es, entry{p, fi.Size(), fi.ModTime().UnixNano()})
		}
	}
	for _, p := range paths {
		if p == "" || strings.Contains(p, "://") {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if !fi.IsDir() {
			add(p, fi)
			continue
		}
		des, err := os.ReadDir(p)
		if err != nil {
			continue
		}
		for _, de := range des {
			if fi, err := de.Info(); err == nil {
				add(filepath.Join(p, de.Name()), fi)
			}
		}
	}
	if len(es) == 0 {
		return ""
	}
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.Path, b.Path) })
	b, _ := json.Marshal(es)
	return sha256Hex(b)[:16]
}
