// Package fsutil holds the file-system steps that several packages need to
// write files durably.
package fsutil

import (
	"errors"
	"os"
	"syscall"
)

// SyncDir fsyncs a folder, making a rename or a new file in it durable.
// Filesystems that cannot fsync a folder are not a failure.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		return nil
	}
	return err
}
