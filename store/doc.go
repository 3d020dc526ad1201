// Package store hides blob storage (local filesystem, Azure Blob, memory)
// behind one small interface so that the pipeline, the query service and the
// viewer never care where datasets live.
//
// Open picks the backend from a URL:
//
//	PATH, file:///abs/path                         local filesystem (the default)
//	mem://, mem://NAME                             in memory (tests; NAME is shared process-wide)
//	azblob://ACCOUNT/CONTAINER[/prefix]            Azure Blob
//	https://ACCOUNT.blob.core.windows.net/CONTAINER[/prefix]
//	http://127.0.0.1:10000/devstoreaccount1/CONTAINER[/prefix]   Azurite emulator
//
// Keys are slash-separated relative paths ("datasets/demo/manifest.json");
// every backend rejects the same malformed keys (see ValidateKey) so that code
// tested against the local filesystem behaves the same on Azure.
//
// The local store writes each blob to a temporary file (.tdb-put-*) and
// renames it; a writer killed mid-write leaves its file, which List and
// Delete remove once it is StaleTempAge old.
//
// It imports nothing else of tdb; its only outside dependency is the Azure SDK
// (azcore, azblob). Tests of other packages can start an Azurite emulator with
// the azuritetest subpackage and check a backend with storetest.
package store
