//go:build !unix

package hub

import "context"

// LockDir is a no-op where flock is unavailable: concurrent pulls of the same
// model are then the user's to avoid.
func LockDir(ctx context.Context, dir string, waiting func()) (func(), error) {
	return func() {}, ctx.Err()
}
