package store

import "testing"

// SetListPageSize makes Azure List pages hold n blobs for the test's duration.
func SetListPageSize(t *testing.T, n int32) {
	old := listPageSize
	listPageSize = n
	t.Cleanup(func() { listPageSize = old })
}
