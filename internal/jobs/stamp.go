package jobs

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
)

// LocalFilesStamp identifies the current content of local model folders
// and autoencoder files by the name, size and modification time of every
// regular file (eachLocalFile: a folder's files, not recursive; names that
// are not local paths add nothing). A job's identity includes it, so
// replacing a model's weights or an autoencoder file is a new job, never
// the finished one reused.
func LocalFilesStamp(paths ...string) string {
	type entry struct {
		Path        string
		Size, MTime int64
	}
	var es []entry
	eachLocalFile(paths, func(p string, fi os.FileInfo) {
		es = append(es, entry{p, fi.Size(), fi.ModTime().UnixNano()})
	})
	if len(es) == 0 {
		return ""
	}
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.Path, b.Path) })
	b, _ := json.Marshal(es)
	return sha256Hex(b)[:16]
}
