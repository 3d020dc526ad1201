package corpus

import (
	"os"
	"syscall"
)

// changeTime is a file's status change time (ctime) in unix nanoseconds:
// unlike the modification time, no user call can set it back, so an edit
// followed by `touch -d`, or a copy that preserves times, moves it.
func changeTime(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ctim.Nano()
	}
	return 0
}
