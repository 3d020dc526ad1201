package azuritetest

import (
	"context"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// CreateContainer creates container name in the emulator of connString and
// returns the account's client to upload with. access "" makes a private
// container; PublicAccessTypeBlob or PublicAccessTypeContainer let
// anonymous clients read it, as OpenAI's public containers do.
func CreateContainer(t testing.TB, connString, name string, access container.PublicAccessType) *azblob.Client {
	t.Helper()
	c, err := azblob.NewClientFromConnectionString(connString, nil)
	if err != nil {
		t.Fatal(err)
	}
	var opts *azblob.CreateContainerOptions
	if access != "" {
		opts = &azblob.CreateContainerOptions{Access: &access}
	}
	if _, err := c.CreateContainer(context.Background(), name, opts); err != nil {
		t.Fatalf("create container %s: %v", name, err)
	}
	return c
}
