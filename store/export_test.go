package store

import (
	"testing"
	"time"
)

// SetListPageSize makes Azure List pages hold n blobs for the test's duration.
func SetListPageSize(t *testing.T, n int32) {
	old := listPageSize
	listPageSize = n
	t.Cleanup(func() { listPageSize = old })
}

// SASOf is the SAS token an Azure store sends, "" for other stores.
func SASOf(s Store) string {
	if a, ok := s.(*Azure); ok {
		return a.u.sas
	}
	return ""
}

// SetAzureTryBase sets the per-try allowance for the test's duration.
func SetAzureTryBase(t *testing.T, d time.Duration) {
	old := azureTryBase
	azureTryBase = d
	t.Cleanup(func() { azureTryBase = old })
}
