//go:build !linux

package corpus

import "os"

// changeTime is 0 (unknown) where the status change time is not read.
func changeTime(os.FileInfo) int64 { return 0 }
