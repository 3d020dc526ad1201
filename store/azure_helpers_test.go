package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
)

// containerSAS creates the container and returns a read/write/list/delete
// SAS query string for it, signed with the connection string's key.
func containerSAS(t *testing.T, conn, name string) string {
	t.Helper()
	c, err := container.NewClientFromConnectionString(conn, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(t.Context(), nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		t.Fatalf("create container %s: %v", name, err)
	}
	perms := sas.ContainerPermissions{Read: true, Add: true, Create: true, Write: true, Delete: true, List: true}
	u, err := c.GetSASURL(perms, time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, q, ok := strings.Cut(u, "?")
	if !ok || !strings.Contains(q, "sig=") {
		t.Fatalf("SAS URL %q has no signature", u)
	}
	return q
}
